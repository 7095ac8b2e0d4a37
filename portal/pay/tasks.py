"""The recovery email's task: sent by the worker after the request's transaction commits.

The link goes straight to the verified address the customer typed, not along
their channel preferences: a bearer link belongs in the mailbox that asked. It
goes out through :mod:`portal.mailer`, the portal's one transactional mail path.
"""

from __future__ import annotations

import logging

from flask import Flask

from distribution.channels.base import ChannelError, ErrorKind
from portal.mailer import MailNotConfigured, send_transactional
from portal.pay.recovery import LinkEmail
from portal.queue import get_huey

log = logging.getLogger(__name__)

EXTENSION_KEY = "herald.pay_tasks"


def init_app(app: Flask) -> None:
    """Register the task on the app's queue (``app.extensions[EXTENSION_KEY]`` enqueues)."""
    settings = app.config["HERALD"]
    huey = get_huey(app)

    @huey.task(name="send_pay_link_email", retries=3, retry_delay=60)
    def send_pay_link_email(email: dict) -> None:
        message = LinkEmail(**email)
        try:
            send_transactional(settings.smtp, to=message.address, name="",
                               language=message.language, subject=message.subject,
                               text=message.text, kind="pay_link",
                               key=f"pay-link-{message.link_id}", link=message.link)
        except MailNotConfigured:
            return  # logged by the mailer; the customer can ask again once email is on
        except ChannelError as error:
            # The reason names the SMTP reply, never the link.
            log.warning("pay link %s not emailed: %s", message.link_id, error.reason)
            if error.kind is ErrorKind.RETRYABLE:
                raise
            return
        log.info("pay link %s emailed", message.link_id)

    app.extensions[EXTENSION_KEY] = send_pay_link_email
