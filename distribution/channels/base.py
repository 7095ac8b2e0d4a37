"""The one interface every channel adapter implements, and how its errors are classed.

A channel gets a fully rendered :class:`OutgoingMessage` and either returns a
:class:`Receipt` or raises :class:`ChannelError` saying whether trying again may
help (``RETRYABLE``), will never help (``PERMANENT``), or whether the address
itself is gone (``ADDRESS_DEAD``: the engine prunes it and falls back to the
customer's next channel). Adapters never touch the database.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol


class ChannelName(enum.StrEnum):
    EMAIL = "email"
    WEB_PUSH = "web_push"
    FCM = "fcm"
    PORTAL = "portal"
    PEPPOL = "peppol"


class ErrorKind(enum.StrEnum):
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    ADDRESS_DEAD = "address_dead"


class ChannelError(Exception):
    """A send failed; ``kind`` decides what the engine does next."""

    def __init__(self, kind: ErrorKind, reason: str, *, retry_after: float | None = None,
                 detail: dict[str, Any] | None = None) -> None:
        super().__init__(f"{kind.value}: {reason}")
        self.kind = kind
        self.reason = reason
        self.retry_after = retry_after
        self.detail = detail or {}


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a message (the invoice PDF, its UBL)."""

    filename: str
    media_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """Everything a channel needs to send one delivery, already rendered.

    ``idempotency_key`` is deterministic per delivery: email uses it in the
    ``Message-ID``, web push as ``Topic``, FCM as collapse key, Peppol as the
    message id, so a resend after a crash is recognised by the receiver.
    ``address`` is the channel's own address form: an email address, a Web Push
    subscription as JSON, an FCM registration token, ``scheme:identifier`` for
    Peppol, the recipient key for the portal inbox.
    """

    delivery_id: int
    idempotency_key: str
    message_type: str
    address: str
    recipient_name: str
    language: str
    subject: str
    text: str
    html: str | None = None
    link: str | None = None
    attachments: tuple[Attachment, ...] = ()
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof that the peer accepted the message."""

    provider_message_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    """A delivery channel adapter."""

    name: ChannelName

    def send(self, message: OutgoingMessage) -> Receipt:
        """Send one message; raise ChannelError on failure."""
        ...
