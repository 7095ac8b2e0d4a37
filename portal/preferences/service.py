"""The customer's channel choices, read from and saved through distribution's preferences.

A customer sets a general order of channels and, per message type, either
"same as general", their own order, or (for types that are not mandatory) "do
not send". Each is one distribution ``Preference`` row, saved with
``set_preference``: a per-type row with no channels means "same as general",
which is how distribution's resolver reads it. Every change is an event with
who, the old and the new choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from distribution.channels.base import ChannelName
from distribution.events import record_event
from distribution.preferences import (
    ALL_TYPES,
    DEFAULT_MESSAGE_TYPES,
    MessageType,
    Preference,
    ensure_message_types,
    resolve_preloaded,
    set_preference,
)
from distribution.recipients import Address, Recipient
from portal.models import Customer
from portal.recipients_sync import recipient_key, sync_customer

MESSAGE_TYPE_CODES = tuple(code for code, _mandatory, _channels in DEFAULT_MESSAGE_TYPES)
ATTACHMENTS = ("pdf", "ubl")
# The order the page offers channels in: from the quietest to the most formal.
CHANNEL_ORDER = (ChannelName.PORTAL, ChannelName.WEB_PUSH, ChannelName.FCM,
                 ChannelName.EMAIL, ChannelName.PEPPOL)
MAX_CHOICES = 3

GENERAL, CUSTOM, OFF = "general", "custom", "off"


@dataclass(frozen=True, slots=True)
class ChannelSetting:
    """What the customer chose for one message type (or ``*``)."""

    mode: str  # GENERAL, CUSTOM or OFF; the ``*`` row is always CUSTOM
    channels: tuple[ChannelName, ...] = ()
    attachments: tuple[str, ...] = ("pdf",)

    def as_payload(self) -> dict[str, object]:
        """The setting as an event payload."""
        return {"mode": self.mode, "channels": [c.value for c in self.channels],
                "attachments": list(self.attachments)}


def customer_recipient(session: Session, customer: Customer, *, actor: str) -> Recipient:
    """The customer's distribution recipient, created from their record on first need."""
    recipient = session.scalars(sa.select(Recipient).where(
        Recipient.recipient_key == recipient_key(customer))).first()
    return recipient if recipient is not None else sync_customer(session, customer, actor=actor)


def message_types(session: Session) -> list[MessageType]:
    """The built-in message types in the page's order (created if missing)."""
    ensure_message_types(session)
    kinds = {k.code: k for k in session.scalars(sa.select(MessageType))}
    return [kinds[code] for code in MESSAGE_TYPE_CODES if code in kinds]


def preference_rows(session: Session, recipient: Recipient) -> dict[str, Preference]:
    """The recipient's saved preference rows by message type (and ``*``)."""
    return {p.message_type: p for p in session.scalars(
        sa.select(Preference).where(Preference.recipient_id == recipient.id))}


def current_settings(session: Session, recipient: Recipient) -> dict[str, ChannelSetting]:
    """The customer's choices, keyed by message type and ``*``; defaults where none is saved."""
    rows = preference_rows(session, recipient)
    kinds = {k.code: k for k in message_types(session)}
    general = rows.get(ALL_TYPES)
    settings = {ALL_TYPES: ChannelSetting(
        CUSTOM,
        tuple(ChannelName(c) for c in general.channels) if general and general.channels
        else tuple(ChannelName(c) for c in kinds["invoice"].default_channels),
        _attachments(general))}
    for code in MESSAGE_TYPE_CODES:
        row = rows.get(code)
        if row is None:
            settings[code] = ChannelSetting(GENERAL, (), settings[ALL_TYPES].attachments)
        elif row.opted_out and not kinds[code].mandatory:
            settings[code] = ChannelSetting(OFF, (), _attachments(row))
        elif row.channels:
            settings[code] = ChannelSetting(CUSTOM, tuple(ChannelName(c) for c in row.channels),
                                            _attachments(row))
        else:
            settings[code] = ChannelSetting(GENERAL, (), _attachments(row))
    return settings


def _attachments(row: Preference | None) -> tuple[str, ...]:
    if row is None or row.email_attachments is None:
        return ("pdf",)
    return tuple(a for a in ATTACHMENTS if a in row.email_attachments)


def save_settings(session: Session, recipient: Recipient, new: dict[str, ChannelSetting], *,
                  actor: str) -> list[str]:
    """Save every changed choice through ``set_preference``; return the changed keys.

    A type on "same as general" needs no row (the resolver then reads the general
    one); where it has one, it is saved with no channels and the general
    attachments, so it keeps following the general choice. Only real changes are
    events: a new general choice is one event, not one per type following it.
    Mandatory types cannot be switched off (``ValueError``).
    """
    kinds = {k.code: k for k in message_types(session)}
    for code, setting in new.items():
        if setting.mode == OFF and kinds[code].mandatory:
            raise ValueError(f"{code} is mandatory and cannot be switched off")
    old = current_settings(session, recipient)
    rows = preference_rows(session, recipient)
    general = new.get(ALL_TYPES, old[ALL_TYPES])
    changed: list[str] = []
    for code in (ALL_TYPES, *MESSAGE_TYPE_CODES):
        setting = new.get(code, old[code])
        if setting.mode == GENERAL:
            setting = ChannelSetting(GENERAL, (), general.attachments)
            if old[code].mode == GENERAL:
                row = rows.get(code)
                if row is not None and list(row.email_attachments or []) != list(
                        general.attachments):
                    set_preference(session, recipient, code, [],
                                   email_attachments=list(general.attachments))
                continue
        elif setting == old[code]:
            continue
        set_preference(session, recipient, code, list(setting.channels),
                       email_attachments=list(setting.attachments),
                       opted_out=setting.mode == OFF)
        record_event(session, "recipient", recipient.recipient_key, "preference.changed",
                     {"message_type": code, "old": old[code].as_payload(),
                      "new": setting.as_payload()}, actor=actor)
        changed.append(code)
    return changed


def explain(kind: MessageType, preferences: dict[str, Preference], addresses: list[Address],
            names: dict[ChannelName, str]) -> str:
    """What happens to a message of ``kind`` now, in the reader's language.

    Told from distribution's own resolver, so the page says what the engine will
    do: every chosen channel that is set up is used; one that is not is skipped
    and, when none is left, the next of the customer's channels stands in; a
    send that fails for good (a gone subscription, a bounced address) is
    followed by one on the next channel in their order, the portal last.
    """
    resolution = resolve_preloaded(kind, preferences, addresses)
    if resolution.opted_out:
        return _("We do not send these; they are listed in the portal.")
    used = [c.channel for c in resolution.choices]
    parts = [_("It waits for you in the portal.") if used == [ChannelName.PORTAL]
             else _("We send it by %(channels)s.", channels=_join([names[c] for c in used]))]
    for choice in resolution.choices:
        if choice.fallback_for is not None:
            parts.append(_("Because %(missing)s is not set up yet, %(used)s stands in.",
                           missing=names[choice.fallback_for], used=names[choice.channel]))
    skipped = [names[c] for c, _reason in resolution.unavailable
               if all(ch.fallback_for is not c for ch in resolution.choices)]
    if skipped:
        parts.append(_("Skipped because not set up yet: %(channels)s.",
                       channels=_join(skipped)))
    next_channel = _next_in_order(kind, preferences, addresses, used)
    if next_channel is not None and used and used[0] is not ChannelName.PORTAL:
        parts.append(_("If %(first)s fails, we use %(next)s.", first=names[used[0]],
                       next=names[next_channel]))
    if kind.mandatory:
        parts.append(_("Required: this message always reaches you."))
    return " ".join(parts)


def _next_in_order(kind: MessageType, preferences: dict[str, Preference],
                   addresses: list[Address], used: list[ChannelName]) -> ChannelName | None:
    # The order distribution's create_fallback walks: general channels, the type's own,
    # the organisation's defaults, the portal.
    overall = preferences.get(ALL_TYPES)
    specific = preferences.get(kind.code)
    order: list[ChannelName] = []
    for source in ((overall.channels if overall else []),
                   (specific.channels if specific else []),
                   kind.default_channels, [ChannelName.PORTAL.value]):
        for value in source:
            channel = ChannelName(value)
            if channel not in order:
                order.append(channel)
    working = {a.channel for a in addresses if a.dead_since is None}
    return next((c for c in order if c not in used
                 and (c is ChannelName.PORTAL or c in working)), None)


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return _("%(items)s and %(last)s", items=", ".join(items[:-1]), last=items[-1])
