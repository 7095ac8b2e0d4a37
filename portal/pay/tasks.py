"""The recovery email's task: sent by the worker after the request's transaction commits.

The link goes straight to the verified address the customer typed, not along
their channel preferences: a bearer link belongs in the mailbox that asked.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app

from distribution.channels.base import ChannelError
from distribution.channels.email import EmailChannel
from portal.pay.recovery import LinkEmail
from portal.queue import get_huey

log = logging.getLogger(__name__)

EXTENSION_KEY = "herald.pay_tasks"


def init_app(app: Flask) -> None:
    """Register the task on the app's queue."""
    settings = app.config["HERALD"]
    huey = get_huey(app)

    @huey.task(name="send_pay_link_email", retries=3, retry_delay=60)
    def send_pay_link_email(email: dict) -> None:
        message = LinkEmail(**email)
        if settings.smtp is None:
            log.warning("pay link %s not emailed: email is not configured (MAIL_FROM)",
                        message.link_id)
            return
        with EmailChannel(settings.smtp) as channel:
            try:
                channel.send(message.outgoing())
            except ChannelError as error:
                # The reason names the SMTP reply, never the link.
                log.warning("pay link %s not emailed: %s", message.link_id, error.reason)
                if error.kind.value == "retryable":
                    raise
        log.info("pay link %s emailed", message.link_id)

    app.extensions[EXTENSION_KEY] = send_pay_link_email


def enqueue_link_email(email: LinkEmail) -> None:
    """Queue the email (call after commit)."""
    current_app.extensions[EXTENSION_KEY](
        {"link_id": email.link_id, "address": email.address, "language": email.language,
         "subject": email.subject, "text": email.text, "link": email.link})
