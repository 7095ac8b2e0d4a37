"""Messages and their deliveries, and the state machine every delivery follows.

The database is the truth (ARCHITECTURE decision 2): each transition is one
conditional ``UPDATE ... WHERE state = <expected>`` in the same transaction as
its event, and the number of rows changed decides who won. Two workers, a
crashed worker and the reconciler can therefore never both move a delivery.

    pending -> released -> sending -> sent -> delivered -> viewed
    failed, in_doubt, cancelled, skipped (and pending again after a retryable error)
"""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from distribution.channels.base import ChannelName
from distribution.events import record_event
from distribution.models import Base
from distribution.recipients import Address, Recipient
from distribution.sqltypes import UTCDateTime, enum_column, utcnow


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    RELEASED = "released"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    VIEWED = "viewed"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


FINAL_STATES = frozenset({DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.VIEWED,
                          DeliveryState.FAILED, DeliveryState.CANCELLED, DeliveryState.SKIPPED})


class Message(Base):
    """One thing to tell one recipient (an invoice issued, a reminder, a receipt)."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(sa.ForeignKey("recipients.id"), index=True)
    message_type: Mapped[str] = mapped_column(sa.ForeignKey("message_types.code"))
    # What the message is about, e.g. "invoice:1:INV-2026-000123" (unique with the type:
    # creating the same message twice adds nothing).
    subject_key: Mapped[str] = mapped_column(sa.String(160))
    parameters: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    link: Mapped[str | None] = mapped_column(sa.String(500))
    ubl_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    pdf_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("runs.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.UniqueConstraint("message_type", "subject_key"),)

    recipient: Mapped[Recipient] = relationship()
    deliveries: Mapped[list[Delivery]] = relationship(back_populates="message",
                                                      order_by="Delivery.id")


_HELD = "state IN ('released', 'sending', 'in_doubt')"


class Delivery(Base):
    """One message on one channel to one address."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.UniqueConstraint("message_id", "channel"),
        sa.Index("ix_deliveries_wave_state", "wave_id", "state"),
        # Only deliveries a worker holds or left in doubt (what the reconciler looks
        # for) are indexed, so planning a million pending deliveries never touches it.
        sa.Index("ix_deliveries_state_lease", "state", "lease_until",
                 postgresql_where=sa.text(_HELD), sqlite_where=sa.text(_HELD)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("messages.id"))
    channel: Mapped[ChannelName] = mapped_column(enum_column(ChannelName, 16))
    address_id: Mapped[int | None] = mapped_column(sa.ForeignKey("addresses.id"))
    wave_id: Mapped[int | None] = mapped_column(sa.ForeignKey("waves.id"))
    state: Mapped[DeliveryState] = mapped_column(enum_column(DeliveryState, 16),
                                                 default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Deterministic per delivery: Message-ID, push Topic, FCM collapse key, Peppol id.
    # A hash of (message type, subject, channel), so it is unique because messages are
    # unique per (type, subject) and deliveries per (message, channel); no index of its
    # own, since nothing looks deliveries up by it and random keys make bulk planning slow.
    idempotency_key: Mapped[str] = mapped_column(sa.String(64))
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(300))
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    fallback_for: Mapped[str | None] = mapped_column(sa.String(16))  # the channel it replaces
    fallback_reason: Mapped[str | None] = mapped_column(sa.String(300))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    message: Mapped[Message] = relationship(back_populates="deliveries")
    address: Mapped[Address | None] = relationship()


def idempotency_key_for(message: Message, channel: ChannelName) -> str:
    """A stable key for (message, channel): the same delivery always gets the same key."""
    digest = hashlib.sha256(
        f"{message.message_type}|{message.subject_key}|{channel.value}".encode()).hexdigest()
    return f"hd{digest[:30]}"


def delivery_key(delivery_id: int) -> str:
    """The subject key of a delivery in the event log."""
    return str(delivery_id)


def transition(session: Session, delivery_id: int, expected: DeliveryState | tuple,
               new: DeliveryState, *, event: str, actor: str,
               payload: dict[str, Any] | None = None, **values: Any) -> bool:
    """Move a delivery from ``expected`` to ``new`` if, and only if, it is still there.

    Returns False (and writes nothing) when another process moved it first.
    """
    states = expected if isinstance(expected, tuple) else (expected,)
    result = session.execute(
        sa.update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.state.in_(states))
        .values(state=new, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    record_event(session, "delivery", delivery_key(delivery_id), event,
                 {"from": [s.value for s in states], "to": new.value, **(payload or {})},
                 actor=actor)
    return True


def attach_pdf(session: Session, ubl_sha256: str, pdf_sha256: str) -> int:
    """Give messages about the document with ``ubl_sha256`` its rendered PDF.

    PDFs are rendered in the background after issuing; messages created before
    then learn their PDF here. Returns how many messages were updated.
    """
    result = session.execute(
        sa.update(Message).where(Message.ubl_sha256 == ubl_sha256, Message.pdf_sha256.is_(None))
        .values(pdf_sha256=pdf_sha256).execution_options(synchronize_session=False))
    return result.rowcount
