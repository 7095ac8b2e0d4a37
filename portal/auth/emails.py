"""The account emails (sign-in link, reset, invitation, registration), sent by one Huey task.

The task gets only the :class:`AccountToken` row's id. It makes the token in
its own short transaction (so no secret sits in the queue), records that the
email went out (without the token), then sends through :mod:`portal.mailer`
outside any transaction, in the customer's language.
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
from portal.auth import tokens
from portal.auth.sessions import user_subject
from portal.config import Settings
from portal.db import get_database
from portal.mailer import MailNotConfigured, send_transactional
from portal.models import AccountToken, Customer, TokenPurpose, User
from portal.queue import get_huey

log = logging.getLogger(__name__)

EXTENSION_KEY = "herald.auth.account_mail"
ACTOR = "worker:account-email"
PATHS = {
    TokenPurpose.MAGIC_LINK: "/sign-in/link/",
    TokenPurpose.PASSWORD_RESET: "/password/reset/",
    TokenPurpose.INVITATION: "/invitation/",
    TokenPurpose.REGISTRATION: "/register/",
}
EVENT_KINDS = {
    TokenPurpose.MAGIC_LINK: "auth.magic_link_sent",
    TokenPurpose.PASSWORD_RESET: "auth.password_reset_sent",
    TokenPurpose.INVITATION: "auth.invitation_sent",
    TokenPurpose.REGISTRATION: "auth.registration_link_sent",
}


def _texts(purpose: TokenPurpose, name: str, link: str, minutes: int, days: int,
           staff: bool = False) -> tuple[str, str]:
    if purpose is TokenPurpose.MAGIC_LINK:
        return _("Your sign-in link"), _(
            "Hello %(name)s,\n\nOpen this link within %(minutes)s minutes to sign in to your "
            "invoices. It works once.\n\n%(link)s\n\nIf you did not ask for it, ignore this "
            "email; nobody can sign in without the link.", name=name, minutes=minutes, link=link)
    if purpose is TokenPurpose.PASSWORD_RESET:
        return _("Choose a new password"), _(
            "Hello %(name)s,\n\nOpen this link within %(minutes)s minutes to choose a new "
            "password. It works once, and signs you out everywhere else.\n\n%(link)s\n\nIf you "
            "did not ask for it, ignore this email; your password stays as it is.",
            name=name, minutes=minutes, link=link)
    if purpose is TokenPurpose.REGISTRATION:
        return _("Confirm your email address"), _(
            "Hello %(name)s,\n\nTo finish creating your sign-in for your invoices, open this "
            "link within %(days)s days and choose your password:\n\n%(link)s\n\nIf you did "
            "not ask for this, ignore this email: nobody can sign in with this address "
            "without it.", name=name, days=days, link=link)
    if staff:
        return _("You are invited to Herald's ops console"), _(
            "Hello %(name)s,\n\nAn administrator gave you a staff account in Herald. Open "
            "this link within %(days)s days to choose your password:\n\n%(link)s\n\nIf you "
            "did not expect this, ignore this email.", name=name, days=days, link=link)
    return _("You are invited to see your invoices online"), _(
        "Hello %(name)s,\n\nYou can now see, download and pay your invoices online, and choose "
        "how we send them. Open this link within %(days)s days to choose your password:\n\n"
        "%(link)s\n\nIf you did not expect this, ignore this email.",
        name=name, days=days, link=link)


def send_account_email(app: Flask, make_session: sessionmaker[Session],
                       smtp: SmtpSettings | None, settings: Settings, token_id: int) -> bool:
    """Make the token of row ``token_id`` and email its link; False when nothing to send."""
    if smtp is None:
        log.warning("email is not configured (MAIL_FROM): account email %s not sent", token_id)
        return False
    with make_session() as session, session.begin():
        row = session.get(AccountToken, token_id)
        if row is None:
            return False
        token = tokens.issue(session, row, settings)
        if token is None:
            return False
        user = session.get(User, row.user_id)
        customer = session.get(Customer, user.customer_id) if user.customer_id else None
        purpose, email, name, staff = row.purpose, user.email, user.name, user.is_staff
        language = (customer.language if customer else None) or "en"
        record_event(session, *user_subject(user), EVENT_KINDS[purpose],
                     {"token_id": row.id, "created_by": row.created_by}, actor=ACTOR)
    link = f"{settings.public_url}{PATHS[purpose]}{token}"
    with app.app_context(), force_locale(language):
        subject, text = _texts(purpose, name, link, settings.sign_in_link_minutes,
                               settings.sign_in_invitation_days, staff)
    try:
        send_transactional(smtp, to=email, name=name, language=language, subject=subject,
                           text=text, link=link, kind=f"account_{purpose.value}",
                           key=f"account-{purpose.value}-{token_id}")
    except MailNotConfigured:
        return False
    return True


def init_app(app: Flask) -> None:
    """Register the task on the app's queue (once per app)."""
    if EXTENSION_KEY in app.extensions:
        return
    settings: Settings = app.config["HERALD"]
    make_session = get_database(app).sessionmaker

    @get_huey(app).task(name="send_account_email", retries=3, retry_delay=60)
    def send_account_email_task(token_id: int) -> bool:
        return send_account_email(app, make_session, settings.smtp, settings, token_id)

    app.extensions[EXTENSION_KEY] = send_account_email_task


def account_email_task(app: Flask | None = None) -> TaskWrapper:
    """The ``send_account_email(token_id)`` task."""
    return (app or current_app).extensions[EXTENSION_KEY]
