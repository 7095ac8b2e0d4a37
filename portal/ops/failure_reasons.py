"""Sorting failed deliveries into reasons an operator can act on.

Channels word their errors each their own way (``SMTP 550 at RCPT: ...``,
``push service answered 410``, ``FCM UNREGISTERED: ...``); the failures page
groups them by what the operator would do about them.
"""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l

MAILBOX_UNKNOWN = "mailbox_unknown"
SMTP_PERMANENT = "smtp_permanent"
DEFERRED = "deferred"
PUSH_GONE = "push_gone"
FCM_UNREGISTERED = "fcm_unregistered"
CONNECTION = "connection"
NOT_READY = "not_ready"
IN_DOUBT = "in_doubt"
ADDRESS_DEAD = "address_dead"
OTHER = "other"

REASONS = {
    MAILBOX_UNKNOWN: _l("Mailbox unknown (SMTP 5xx)"),
    SMTP_PERMANENT: _l("Refused by the mail server (SMTP 5xx)"),
    DEFERRED: _l("Deferred by the mail server (SMTP 4xx)"),
    PUSH_GONE: _l("Push subscription gone (404/410)"),
    FCM_UNREGISTERED: _l("App no longer registered (FCM)"),
    CONNECTION: _l("Timeout or connection failure"),
    NOT_READY: _l("Document not ready"),
    IN_DOUBT: _l("In doubt: the worker stopped while sending"),
    ADDRESS_DEAD: _l("Address marked dead"),
    OTHER: _l("Other"),
}

_SMTP = re.compile(r"SMTP (\d)(\d\d)\b")
_MAILBOX = re.compile(r"5\.1\.[0-9]|user unknown|no such user|mailbox (unavailable|not found|"
                      r"unknown)|does not exist|recipient (address )?rejected|unknown user",
                      re.IGNORECASE)
_CONNECTION = re.compile(r"timed? ?out|timeout|unreachable|connection|refused|reset by peer|"
                         r"temporarily unavailable|network", re.IGNORECASE)


def reason_class(last_error: str | None, *, state: str = "failed",
                 address_dead: bool = False) -> str:
    """The group of a delivery's last error (one of :data:`REASONS`)."""
    error = last_error or ""
    smtp = _SMTP.search(error)
    if smtp:
        if smtp.group(1) == "5":
            return MAILBOX_UNKNOWN if _MAILBOX.search(error) else SMTP_PERMANENT
        if smtp.group(1) == "4":
            return DEFERRED
    if re.search(r"push service answered (404|410)|push subscription (rejected|gone)|"
                 r"malformed push subscription", error):
        return PUSH_GONE
    if re.search(r"FCM (UNREGISTERED|SENDER_ID_MISMATCH)|registration token", error):
        return FCM_UNREGISTERED
    if re.search(r"still being rendered|cannot be built|no issued UBL", error):
        return NOT_READY
    if error and _CONNECTION.search(error):
        return CONNECTION
    if not error and state == "in_doubt":
        return IN_DOUBT
    if address_dead:
        return ADDRESS_DEAD
    if state == "in_doubt":
        return IN_DOUBT
    return OTHER
