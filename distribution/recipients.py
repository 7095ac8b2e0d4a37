"""Recipients and their channel addresses.

The portal gives each customer an opaque ``recipient_key`` and keeps the
recipient's addresses in step through these functions, in its own transaction.
An address that bounces or is unregistered is marked dead, not deleted, so the
log can show what was tried.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from distribution.channels.base import ChannelName
from distribution.events import record_event
from distribution.models import Base
from distribution.sqltypes import UTCDateTime, enum_column, utcnow


class Recipient(Base):
    """Someone Herald sends messages to (a customer of the portal, by key)."""

    __tablename__ = "recipients"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_key: Mapped[str] = mapped_column(sa.String(128), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    language: Mapped[str] = mapped_column(sa.String(8), default="en")
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    addresses: Mapped[list[Address]] = relationship(
        back_populates="recipient", cascade="all, delete-orphan", order_by="Address.id")

    def working_addresses(self, channel: ChannelName) -> list[Address]:
        """Addresses on ``channel`` that are not dead, newest first."""
        return sorted((a for a in self.addresses if a.channel is channel and a.dead_since is None),
                      key=lambda a: a.id, reverse=True)


class Address(Base):
    """One way to reach a recipient: an email, a push subscription, a device, a Peppol ID."""

    __tablename__ = "addresses"
    __table_args__ = (sa.UniqueConstraint("recipient_id", "channel", "value_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(
        sa.ForeignKey("recipients.id", ondelete="CASCADE"), index=True)
    channel: Mapped[ChannelName] = mapped_column(enum_column(ChannelName, 16))
    value: Mapped[str] = mapped_column(sa.Text)
    # Push subscriptions are long JSON; uniqueness is checked on their hash.
    value_sha256: Mapped[str] = mapped_column(sa.String(64))
    label: Mapped[str | None] = mapped_column(sa.String(120))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dead_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dead_reason: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    recipient: Mapped[Recipient] = relationship(back_populates="addresses")


def upsert_recipient(session: Session, key: str, *, name: str, language: str,
                     time_zone: str) -> Recipient:
    """The recipient with ``key``, created or updated with the given details."""
    recipient = session.scalars(sa.select(Recipient).where(Recipient.recipient_key == key)).first()
    if recipient is None:
        recipient = Recipient(recipient_key=key, name=name, language=language,
                              time_zone=time_zone)
        session.add(recipient)
        session.flush()
        return recipient
    recipient.name, recipient.language, recipient.time_zone = name, language, time_zone
    return recipient


def add_address(session: Session, recipient: Recipient, channel: ChannelName, value: str, *,
                verified: bool = False, label: str | None = None, actor: str,
                revive: bool = True) -> Address:
    """Add an address (or, with ``revive``, bring the same one back if it was dead); logged.

    Syncs from the billing system pass ``revive=False``: an address that bounced
    stays dead until someone gives it again on purpose (the customer, an agent),
    rather than coming back with every run and bouncing every month.
    """
    digest = hashlib.sha256(value.encode()).hexdigest()
    address = next((a for a in recipient.addresses
                    if a.channel is channel and a.value_sha256 == digest), None)
    if address is None:
        address = Address(channel=channel, value=value, value_sha256=digest, label=label)
        recipient.addresses.append(address)
        session.flush()
        record_event(session, "recipient", recipient.recipient_key, "address.added",
                     {"channel": channel.value, "address_id": address.id, "label": label},
                     actor=actor)
    elif address.dead_since is not None and revive:
        address.dead_since = None
        address.dead_reason = None
        record_event(session, "recipient", recipient.recipient_key, "address.revived",
                     {"channel": channel.value, "address_id": address.id}, actor=actor)
    if verified and address.verified_at is None:
        address.verified_at = utcnow()
    return address


def mark_dead(session: Session, address: Address, reason: str, *, actor: str) -> None:
    """Stop using ``address`` (a bounce, an unregistered token, a gone subscription)."""
    if address.dead_since is not None:
        return
    address.dead_since = utcnow()
    address.dead_reason = reason[:300]
    record_event(session, "recipient", address.recipient.recipient_key, "address.dead",
                 {"channel": address.channel.value, "address_id": address.id, "reason": reason},
                 actor=actor)
