"""One transactional email (a sign-in link, a reset, an invitation) through the SMTP channel.

Account emails are not deliveries of a run: they go straight through
distribution's email channel with the installation's SMTP settings, from a Huey
task queued after the request's transaction commits (:func:`after_commit`), so
the worker always finds the rows the request wrote and a rolled-back request
sends nothing. The message's text may hold a link with a secret; it is never
logged here (the channel logs only the message's key and the SMTP reply).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.channels.base import OutgoingMessage, Receipt
from distribution.channels.email import EmailChannel, SmtpSettings

log = logging.getLogger(__name__)


class MailNotConfigured(RuntimeError):
    """Email is off (no MAIL_FROM): the message cannot be sent."""


def send_transactional(smtp: SmtpSettings | None, *, to: str, name: str, language: str,
                       subject: str, text: str, kind: str, key: str,
                       link: str | None = None) -> Receipt:
    """Send one email now; ``key`` (no secret in it) makes the Message-ID.

    Raises :class:`MailNotConfigured` when email is off, and the channel's
    ``ChannelError`` when the server refuses, so a task can retry.
    """
    if smtp is None:
        log.warning("email is not configured (MAIL_FROM): %s email %s not sent", kind, key)
        raise MailNotConfigured(kind)
    message = OutgoingMessage(delivery_id=0, idempotency_key=key, message_type=kind,
                              address=to, recipient_name=name, language=language,
                              subject=subject, text=text, link=link)
    channel = EmailChannel(smtp)
    try:
        return channel.send(message)
    finally:
        channel.close()


def after_commit(session: Session, action: Callable[[], object]) -> None:
    """Run ``action`` once the session's transaction has committed (never if it rolls back)."""
    sa.event.listen(session, "after_commit", lambda _session: action(), once=True)
