"""The email that carries an address's verification link, sent by a background task.

The task makes the token itself (in its own short transaction) rather than
receiving it, so no secret ever sits in the task queue; then it sends through
the portal's transactional mailer (:mod:`portal.mailer`), outside any
transaction. It is queued only after the request that added the address has
committed (:func:`portal.mailer.after_commit`), so the worker always finds the
row. If the send fails, Huey retries and the retry makes a new token, which
ends the unsent one.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from huey.api import TaskWrapper
from sqlalchemy.orm import Session, sessionmaker

from distribution.channels.email import SmtpSettings
from distribution.events import record_event
from distribution.sqltypes import utcnow
from portal.db import get_database
from portal.mailer import send_transactional
from portal.models import Customer, CustomerEmailAddress
from portal.preferences.emails import TOKEN_LIFETIME, new_token
from portal.queue import get_huey
from portal.recipients_sync import recipient_key

log = logging.getLogger(__name__)

EXTENSION_KEY = "herald.preferences.verification_mail"
VERIFY_PATH = "/preferences/emails/verify/"
ACTOR = "worker:email-verification"


def send_verification(app: Flask, make_session: sessionmaker[Session],
                      smtp: SmtpSettings | None, public_url: str, pending_id: int) -> bool:
    """Make a token for the pending address and email its link; False when nothing to send."""
    if smtp is None:
        log.warning("email is not configured (MAIL_FROM): no verification link for "
                    "pending address %s", pending_id)
        return False
    with make_session() as session, session.begin():
        row = session.get(CustomerEmailAddress, pending_id)
        if row is None:
            return False
        token = new_token(session, row)
        if token is None:
            return False
        customer = session.get(Customer, row.customer_id)
        email, name, language = row.email, customer.name, customer.language or "en"
        record_event(session, "recipient", recipient_key(customer), "email.verification_sent",
                     {"email_id": row.id}, actor=ACTOR)
    link = f"{public_url}{VERIFY_PATH}{token}"
    hours = int(TOKEN_LIFETIME.total_seconds() // 3600)
    with app.app_context(), force_locale(language):
        subject = _("Confirm your email address")
        text = _("Hello %(name)s,\n\nSomeone, probably you, asked us to send invoices and "
                 "messages to this address. To confirm, open this link within %(hours)s hours "
                 "and press the button:\n\n%(link)s\n\nIf this was not you, ignore this email; "
                 "we will not use the address.", name=name, hours=hours, link=link)
    # The key names the row, never the token: it becomes the Message-ID.
    send_transactional(smtp, to=email, name=name, language=language, subject=subject,
                       text=text, kind="email_verification",
                       key=f"email-verification-{pending_id}-{utcnow():%Y%m%d%H%M%S}", link=link)
    return True


def init_app(app: Flask) -> None:
    """Register the task on the app's queue (once per app)."""
    if EXTENSION_KEY in app.extensions:
        return
    settings = app.config["HERALD"]
    make_session = get_database(app).sessionmaker

    @get_huey(app).task(name="send_email_verification", retries=3, retry_delay=60)
    def send_email_verification(pending_id: int) -> bool:
        return send_verification(app, make_session, settings.smtp, settings.public_url,
                                 pending_id)

    app.extensions[EXTENSION_KEY] = send_email_verification


def verification_task(app: Flask | None = None) -> TaskWrapper:
    """The ``send_email_verification(pending_id)`` task."""
    return (app or current_app).extensions[EXTENSION_KEY]

