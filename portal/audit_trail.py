"""The whole story of one invoice from the log, for operators and auditors.

Unlike the customer's timeline (portal.invoices.timeline), nothing is left out:
the invoice's own events (imported, issued with its hash, PDF rendered, links,
reminders, disputes, payments), and for every message about it (the document
itself, its reminders and receipts) the preference resolution and every step of
every delivery (planned, released, sending, sent, delivered, viewed, failed,
retried, in doubt, cancelled, fallback). Each entry keeps its hash, so the trail
can be checked against the chain.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.deliveries import Delivery, Message
from distribution.events import Event
from portal.issuing import invoice_key
from portal.models import Invoice, Payment


@dataclass(frozen=True, slots=True)
class TrailEntry:
    """One event of the trail, with what it is about in words an operator reads."""

    event: Event
    about: str  # "invoice", "message 12 (reminder:1:INV-1:7)", "delivery 40 (email)"


def message_subjects(invoice: Invoice) -> tuple[list[str], list[str]]:
    """Exact subject keys and prefixes of the messages about ``invoice``."""
    key = invoice_key(invoice)
    return [f"{invoice.kind.value}:{key}"], [f"reminder:{key}:", f"receipt:{key}:",
                                             f"signature_request:{key}:", f"resend:{key}:"]


def invoice_trail(session: Session, invoice: Invoice) -> list[TrailEntry]:
    """Every event about ``invoice``, its messages, deliveries and payments, oldest first."""
    exact, prefixes = message_subjects(invoice)
    messages = {str(row.id): row.subject_key for row in session.execute(
        sa.select(Message.id, Message.subject_key).where(sa.or_(
            Message.subject_key.in_(exact),
            *(Message.subject_key.startswith(prefix, autoescape=True)
              for prefix in prefixes))))}
    deliveries = {str(row.id): row.channel.value for row in session.execute(
        sa.select(Delivery.id, Delivery.channel).where(
            Delivery.message_id.in_([int(m) for m in messages])))} if messages else {}
    payments = [str(p) for p in session.scalars(
        sa.select(Payment.id).where(Payment.invoice_id == invoice.id))]
    conditions = [sa.and_(Event.subject_type == "invoice",
                          Event.subject_key == invoice_key(invoice))]
    for subject_type, keys in (("message", list(messages)), ("delivery", list(deliveries)),
                               ("payment", payments)):
        if keys:
            conditions.append(sa.and_(Event.subject_type == subject_type,
                                      Event.subject_key.in_(keys)))
    entries = []
    for event in session.scalars(sa.select(Event).where(sa.or_(*conditions))
                                 .order_by(Event.id)):
        if event.subject_type == "message":
            about = f"message {event.subject_key} ({messages[event.subject_key]})"
        elif event.subject_type == "delivery":
            about = f"delivery {event.subject_key} ({deliveries[event.subject_key]})"
        elif event.subject_type == "payment":
            about = f"payment {event.subject_key}"
        else:
            about = "invoice"
        entries.append(TrailEntry(event, about))
    return entries


def describe(event: Event) -> str:
    """The payload as short ``key=value`` pairs (nothing secret is ever in a payload)."""
    return ", ".join(f"{key}={json.dumps(value, ensure_ascii=False, default=str)}"
                     for key, value in sorted(event.payload.items()))


def trail_csv(entries: Iterable[TrailEntry]) -> str:
    """The trail as CSV: id, time (UTC, ISO 8601), about, kind, actor, details, hash."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["event_id", "at", "about", "kind", "actor", "details", "hash"])
    for entry in entries:
        event = entry.event
        writer.writerow([event.id, event.at.isoformat(), entry.about, event.kind,
                         safe_cell(event.actor), safe_cell(describe(event)), event.hash])
    return out.getvalue()


def safe_cell(text: str) -> str:
    """A CSV cell that spreadsheets show as text (one starting with = + - @ would run)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def find_invoice(session: Session, number: str, *, customer: str | None = None
                 ) -> list[Invoice]:
    """Documents with this number (one per seller), narrowed by customer number if given."""
    from portal.models import Customer

    query = sa.select(Invoice).where(Invoice.number == number).order_by(Invoice.id)
    if customer:
        query = query.join(Customer, Customer.id == Invoice.customer_id).where(
            Customer.number == customer)
    return list(session.scalars(query))
