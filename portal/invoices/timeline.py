"""What happened to an invoice, told to its customer in plain words from the delivery log.

Built from distribution's event log: the invoice's own events (issued, payments,
reminders stopped, disputes) and those of the deliveries of the customer's
messages about it (the invoice or credit note itself, its reminders and
receipts). Only what concerns the customer is told, and nothing internal: no
other recipient, no error text, no IP, no provider ids. Email addresses are
shortened (``a…@example.com``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from babel.dates import format_date, format_time
from babel.numbers import format_currency
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, Message
from distribution.events import Event
from distribution.recipients import Address, Recipient
from portal.issuing import invoice_key
from portal.models import Invoice
from portal.recipients_sync import recipient_key


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of the timeline."""

    at: datetime
    text: str
    kind: str  # the event kind, for styling and tests


@dataclass(frozen=True, slots=True)
class _DeliveryFacts:
    message_type: str
    channel: ChannelName
    address: str | None


DELIVERY_KINDS = ("delivery.sent", "delivery.viewed", "delivery.failed")
INVOICE_KINDS = ("invoice.issued", "payment.recorded", "refund.recorded", "reminder.stopped",
                 "dispute.opened", "dispute.status_changed", "dispute.withdrawn",
                 "invoice.disputed")


def mask_email(address: str) -> str:
    """``anna.peeters@example.com`` → ``a…@example.com``: recognisable, not harvestable."""
    local, at, domain = address.partition("@")
    if not at:
        return "…"
    return f"{local[:1]}…@{domain}"


def _subjects(invoice: Invoice) -> tuple[list[str], list[str]]:
    """Exact subject keys and prefixes of the customer's messages about ``invoice``."""
    key = invoice_key(invoice)
    return [f"{invoice.kind.value}:{key}"], [f"reminder:{key}:", f"receipt:{key}:"]


def _deliveries(session: Session, invoice: Invoice) -> dict[str, _DeliveryFacts]:
    """Per delivery key, the facts about the customer's deliveries about ``invoice``."""
    exact, prefixes = _subjects(invoice)
    about = sa.or_(Message.subject_key.in_(exact),
                   *(Message.subject_key.startswith(p, autoescape=True) for p in prefixes))
    rows = session.execute(
        sa.select(Delivery.id, Delivery.channel, Message.message_type, Address.channel,
                  Address.value)
        .join(Message, Message.id == Delivery.message_id)
        .join(Recipient, Recipient.id == Message.recipient_id)
        .outerjoin(Address, Address.id == Delivery.address_id)
        .where(Recipient.recipient_key == recipient_key(invoice.customer_id), about)).all()
    facts = {}
    for delivery_id, channel, message_type, address_channel, value in rows:
        shown = None
        if address_channel is ChannelName.EMAIL and value:
            shown = mask_email(value)
        elif address_channel is ChannelName.PEPPOL and value:
            shown = value  # the customer's own Peppol ID, which they chose
        facts[str(delivery_id)] = _DeliveryFacts(message_type, channel, shown)
    return facts


def invoice_timeline(session: Session, invoice: Invoice, *, locale: str,
                     time_zone: str) -> list[TimelineEntry]:
    """The customer-facing story of ``invoice``, oldest first."""
    deliveries = _deliveries(session, invoice)
    conditions = [sa.and_(Event.subject_type == "invoice",
                          Event.subject_key == invoice_key(invoice),
                          Event.kind.in_(INVOICE_KINDS))]
    if deliveries:
        conditions.append(sa.and_(Event.subject_type == "delivery",
                                  Event.subject_key.in_(list(deliveries)),
                                  Event.kind.in_(DELIVERY_KINDS)))
    events = session.scalars(sa.select(Event).where(sa.or_(*conditions)).order_by(Event.id))
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")

    def when(at: datetime) -> str:
        local = at.astimezone(zone)
        return f"{format_date(local, 'medium', locale=locale)} " \
               f"{format_time(local, 'short', locale=locale)}"

    entries: list[TimelineEntry] = []
    seen: set[str] = set()
    for event in events:
        facts = deliveries.get(event.subject_key) if event.subject_type == "delivery" else None
        text = _describe(event, facts, when(event.at), invoice, locale)
        if text and text not in seen:  # one view marks several deliveries: say it once
            seen.add(text)
            entries.append(TimelineEntry(event.at, text, event.kind))
    return entries


def _describe(event: Event, facts: _DeliveryFacts | None, when: str, invoice: Invoice,
              locale: str) -> str | None:
    if facts is not None:
        return _describe_delivery(event.kind, facts, when)
    payload = event.payload or {}
    describe = _INVOICE_TEXTS.get(event.kind)
    return describe(payload, when, invoice, locale) if describe else None


def _describe_delivery(kind: str, facts: _DeliveryFacts, when: str) -> str | None:
    if kind == "delivery.viewed":
        return _("Viewed on %(when)s", when=when)
    channel, address = facts.channel, facts.address or ""
    if kind == "delivery.failed":
        if channel is ChannelName.EMAIL:
            return _("An email to %(address)s could not be delivered (%(when)s)",
                     address=address, when=when)
        return None  # other channels fall back or retry; nothing the customer can act on
    if facts.message_type == "reminder":
        return _reminder_sent(channel, address, when)
    if facts.message_type == "receipt":
        return _("Payment receipt sent on %(when)s", when=when)
    return _document_sent(channel, address, when)


def _document_sent(channel: ChannelName, address: str, when: str) -> str | None:
    # Whole sentences per channel, so that translators never glue fragments together.
    if channel is ChannelName.EMAIL:
        return _("Sent by email to %(address)s on %(when)s", address=address, when=when)
    if channel is ChannelName.PORTAL:
        return _("Delivered to your portal inbox on %(when)s", when=when)
    if channel is ChannelName.WEB_PUSH:
        return _("Sent as a browser notification on %(when)s", when=when)
    if channel is ChannelName.FCM:
        return _("Sent to the app on your phone on %(when)s", when=when)
    if channel is ChannelName.PEPPOL:
        return _("Sent as an e-invoice over Peppol to %(address)s on %(when)s",
                 address=address, when=when)
    return None


def _reminder_sent(channel: ChannelName, address: str, when: str) -> str | None:
    if channel is ChannelName.EMAIL:
        return _("Reminder sent by email to %(address)s on %(when)s", address=address,
                 when=when)
    if channel is ChannelName.PORTAL:
        return _("Reminder delivered to your portal inbox on %(when)s", when=when)
    if channel in (ChannelName.WEB_PUSH, ChannelName.FCM):
        return _("Reminder sent as a notification on %(when)s", when=when)
    return None


def _money(payload: dict, invoice: Invoice, locale: str) -> str:
    try:
        return format_currency(payload.get("amount", ""), payload.get("currency")
                               or invoice.currency, locale=locale)
    except (ValueError, ArithmeticError):
        return ""


def _reminders_stopped(payload: dict, when: str, invoice: Invoice, locale: str) -> str | None:
    reason = payload.get("reason")
    if reason == "paid":
        return _("Reminders stopped: the invoice is paid (%(when)s)", when=when)
    if reason == "disputed":
        return _("Reminders paused while your dispute is handled (%(when)s)", when=when)
    return _("Reminders stopped on %(when)s", when=when)


def _dispute_changed(payload: dict, when: str, invoice: Invoice, locale: str) -> str | None:
    if payload.get("to") == "under_review":
        return _("Your dispute is being reviewed (%(when)s)", when=when)
    if payload.get("resolution") == "accepted":
        return _("Your dispute was accepted on %(when)s", when=when)
    if payload.get("resolution") == "rejected":
        return _("Your dispute was rejected on %(when)s", when=when)
    return None


_INVOICE_TEXTS: dict[str, Callable[[dict, str, Invoice, str], str | None]] = {
    "invoice.issued": lambda p, when, i, loc: (
        _("Credit note issued on %(when)s", when=when) if i.is_credit_note
        else _("Invoice issued on %(when)s", when=when)),
    "payment.recorded": lambda p, when, i, loc: _(
        "Payment of %(amount)s received on %(when)s", amount=_money(p, i, loc), when=when),
    "refund.recorded": lambda p, when, i, loc: _(
        "Refund of %(amount)s made on %(when)s", amount=_money(p, i, loc), when=when),
    "reminder.stopped": _reminders_stopped,
    "dispute.opened": lambda p, when, i, loc: _("You disputed this invoice on %(when)s",
                                                when=when),
    "invoice.disputed": lambda p, when, i, loc: _("Disputed on %(when)s", when=when),
    "dispute.status_changed": _dispute_changed,
    "dispute.withdrawn": lambda p, when, i, loc: _("You withdrew your dispute on %(when)s",
                                                   when=when),
}
