"""Which channels a message goes out on: organisation defaults, mandatory types, the
customer's own choice per message type or for everything, and fallbacks.

Resolution is layered (ARCHITECTURE decision 7). The customer's list of
channels for a message type (else their global list, else the organisation's
default for the type) says where the message goes. A chosen channel with no
working address falls back along the customer's order of channels, and finally
to the portal inbox, which always works; every fallback carries its reason so
the message can tell the customer and the log can tell the auditor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from distribution.channels.base import ChannelName
from distribution.models import Base
from distribution.recipients import Address, Recipient
from distribution.sqltypes import UTCDateTime, utcnow

ALL_TYPES = "*"

# Built-in message types: (code, mandatory, default channels in order).
DEFAULT_MESSAGE_TYPES = (
    ("invoice", False, ["email", "portal"]),
    ("credit_note", False, ["email", "portal"]),
    ("reminder", False, ["email", "portal"]),
    ("receipt", False, ["email"]),
    ("signature_request", True, ["email", "portal"]),
    ("notice", True, ["email", "portal"]),
)

NO_ADDRESS_REASONS = {
    ChannelName.EMAIL: "no working email address",
    ChannelName.WEB_PUSH: "no browser has push notifications switched on",
    ChannelName.FCM: "the mobile app is not registered on any device",
    ChannelName.PEPPOL: "no Peppol ID is known",
    ChannelName.PORTAL: "",
}


class MessageType(Base):
    """A kind of message and the organisation's default channels for it."""

    __tablename__ = "message_types"

    code: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    mandatory: Mapped[bool] = mapped_column(default=False)
    default_channels: Mapped[list[str]] = mapped_column(sa.JSON)


class Preference(Base):
    """A recipient's channels for one message type, or for all of them (``*``)."""

    __tablename__ = "preferences"
    __table_args__ = (sa.UniqueConstraint("recipient_id", "message_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(
        sa.ForeignKey("recipients.id", ondelete="CASCADE"), index=True)
    message_type: Mapped[str] = mapped_column(sa.String(32))
    channels: Mapped[list[str]] = mapped_column(sa.JSON)
    opted_out: Mapped[bool] = mapped_column(default=False)
    # What email carries: ["pdf"], ["ubl"], both, or nothing (the link only).
    email_attachments: Mapped[list[str]] = mapped_column(sa.JSON, default=lambda: ["pdf"])
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


@dataclass(frozen=True, slots=True)
class ChannelChoice:
    """One channel a message goes out on, the address to use, and why it was chosen."""

    channel: ChannelName
    address: Address | None  # None for the portal inbox
    fallback_for: ChannelName | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where one message goes, and what the customer asked for."""

    choices: list[ChannelChoice]
    email_attachments: list[str]
    opted_out: bool = False
    # Chosen channels that cannot be used now, with the reason (told to the customer).
    unavailable: list[tuple[ChannelName, str]] = field(default_factory=list)


def ensure_message_types(session: Session) -> None:
    """Create the built-in message types that do not exist yet."""
    existing = set(session.scalars(sa.select(MessageType.code)))
    for code, mandatory, channels in DEFAULT_MESSAGE_TYPES:
        if code not in existing:
            session.add(MessageType(code=code, mandatory=mandatory, default_channels=channels))
    session.flush()


def set_preference(session: Session, recipient: Recipient, message_type: str,
                   channels: list[ChannelName], *, email_attachments: list[str] | None = None,
                   opted_out: bool = False) -> Preference:
    """Record the recipient's channels for ``message_type`` (``*`` for all types)."""
    preference = session.scalars(sa.select(Preference).where(
        Preference.recipient_id == recipient.id,
        Preference.message_type == message_type)).first()
    if preference is None:
        preference = Preference(recipient_id=recipient.id, message_type=message_type)
        session.add(preference)
    preference.channels = [ChannelName(c).value for c in channels]
    preference.opted_out = opted_out
    if email_attachments is not None:
        preference.email_attachments = email_attachments
    session.flush()
    return preference


def resolve(session: Session, recipient: Recipient, message_type: str) -> Resolution:
    """The channels and addresses for one message of ``message_type`` to ``recipient``."""
    kind = session.get(MessageType, message_type)
    if kind is None:
        raise unknown_message_type(message_type)
    preferences = {p.message_type: p for p in session.scalars(
        sa.select(Preference).where(Preference.recipient_id == recipient.id))}
    return resolve_preloaded(kind, preferences, recipient.addresses)


def unknown_message_type(message_type: str) -> ValueError:
    """The error for a message type Herald does not know."""
    return ValueError(f"unknown message type {message_type!r}; known: "
                      + ", ".join(code for code, _, _ in DEFAULT_MESSAGE_TYPES))


def resolve_preloaded(kind: MessageType, preferences: Mapping[str, Preference],
                      addresses: Sequence[Address]) -> Resolution:
    """:func:`resolve` over data already loaded: no database access.

    ``preferences`` maps message type (or ``*``) to the recipient's rows (only
    ``kind.code`` and ``*`` are read); ``addresses`` are all the recipient's
    addresses, dead ones included. Any objects with the same attributes do (bulk
    run creation passes plain rows); the chosen addresses are returned as given.
    """
    specific = preferences.get(kind.code)
    overall = preferences.get(ALL_TYPES)
    chosen = specific or overall
    attachments = email_attachments_of(chosen)
    if chosen is not None and chosen.opted_out and not kind.mandatory:
        return Resolution([], attachments, opted_out=True)
    # A per-type row without channels (e.g. one that only sets attachments) keeps the
    # customer's global channels; an opt-out of a mandatory type gets the defaults.
    chosen_channels = next((p.channels for p in (specific, overall)
                            if p is not None and p.channels and not p.opted_out), None)
    if chosen is not None and chosen.opted_out:
        chosen_channels = None
    wanted = [ChannelName(c) for c in (chosen_channels or kind.default_channels)]
    order = _unique([ChannelName(c) for c in (overall.channels if overall else [])]
                    + wanted + [ChannelName(c) for c in kind.default_channels]
                    + [ChannelName.PORTAL])
    choices: list[ChannelChoice] = []
    unavailable: list[tuple[ChannelName, str]] = []
    for channel in _unique(wanted):
        address = _working_address(addresses, channel)
        if channel is ChannelName.PORTAL or address is not None:
            choices.append(ChannelChoice(channel, address))
        else:
            unavailable.append((channel, NO_ADDRESS_REASONS[channel]))
    if not choices and unavailable:
        # Nothing the customer chose works: fall back along their order, portal last.
        missed, reason = unavailable[0]
        fallback = next(c for c in order if c not in wanted
                        and (c is ChannelName.PORTAL or _working_address(addresses, c)))
        choices.append(ChannelChoice(fallback, _working_address(addresses, fallback),
                                     fallback_for=missed, reason=reason))
    return Resolution(choices, attachments, unavailable=unavailable)


def chosen_preference(preferences: Mapping[str, Any], message_type: str) -> Any:
    """The recipient's row that decides for ``message_type``: its own, else the ``*`` one."""
    return preferences.get(message_type) or preferences.get(ALL_TYPES)


def email_attachments_of(chosen: Any) -> list[str]:
    """What an email carries by the deciding preference row (``None``: no row, the default)."""
    # An empty list is a choice (the link only); only a missing one means the default.
    if chosen is not None and chosen.email_attachments is not None:
        return list(chosen.email_attachments)
    return ["pdf"]


def _working_address(addresses: Sequence[Address], channel: ChannelName) -> Address | None:
    # As Recipient.working_addresses: not dead, newest first; verified ones preferred.
    working = sorted((a for a in addresses if a.channel is channel and a.dead_since is None),
                     key=lambda a: a.id, reverse=True)
    verified = [a for a in working if a.verified_at is not None]
    return (verified or working or [None])[0]


def _unique(channels: list[ChannelName]) -> list[ChannelName]:
    seen: list[ChannelName] = []
    for channel in channels:
        if channel not in seen:
            seen.append(channel)
    return seen
