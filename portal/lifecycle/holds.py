"""Placing, releasing and checking legal holds; each change is an event."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.events import record_event
from distribution.sqltypes import utcnow
from portal.issuing import invoice_key
from portal.lifecycle.models import LegalHold
from portal.models import Customer, Invoice


class HoldError(ValueError):
    """A hold cannot be placed or released; the message says why and what to do."""


def place_hold(session: Session, *, reason: str, actor: str, customer: Customer | None = None,
               invoice: Invoice | None = None) -> LegalHold:
    """Hold one customer or one invoice (not both); the reason is required."""
    if (customer is None) == (invoice is None):
        raise HoldError("name either a customer or an invoice to hold, not both")
    reason = (reason or "").strip()
    if not reason:
        raise HoldError("--reason is required: say why the records must be kept "
                        "(e.g. a court case or a tax audit reference)")
    hold = LegalHold(customer_id=customer.id if customer else None,
                     invoice_id=invoice.id if invoice else None,
                     reason=reason[:500], placed_by=actor)
    session.add(hold)
    session.flush()
    subject = ("customer", str(customer.id)) if customer else ("invoice", invoice_key(invoice))
    record_event(session, *subject, "legal_hold.placed", {"hold_id": hold.id, "reason": reason},
                 actor=actor)
    return hold


def release_hold(session: Session, hold_id: int, *, actor: str) -> LegalHold:
    """End an active hold; its row stays as a record of the hold."""
    hold = session.get(LegalHold, hold_id)
    if hold is None or hold.released_at is not None:
        raise HoldError(f"no active legal hold {hold_id}; 'herald lifecycle hold list' shows them")
    hold.released_at = utcnow()
    hold.released_by = actor
    if hold.customer_id is not None:
        subject = ("customer", str(hold.customer_id))
    else:
        subject = ("invoice", invoice_key(session.get(Invoice, hold.invoice_id)))
    record_event(session, *subject, "legal_hold.released", {"hold_id": hold.id}, actor=actor)
    return hold


def active_holds(session: Session) -> list[LegalHold]:
    """Every hold not yet released, oldest first."""
    return list(session.scalars(sa.select(LegalHold).where(LegalHold.released_at.is_(None))
                                .order_by(LegalHold.id)))


def held_customer_ids(session: Session) -> set[int]:
    """Customers under an active hold."""
    return set(session.scalars(sa.select(LegalHold.customer_id).where(
        LegalHold.released_at.is_(None), LegalHold.customer_id.is_not(None))))


def held_invoice_ids(session: Session) -> set[int]:
    """Invoices under an active hold of their own (a customer's hold covers theirs too)."""
    return set(session.scalars(sa.select(LegalHold.invoice_id).where(
        LegalHold.released_at.is_(None), LegalHold.invoice_id.is_not(None))))


def customer_is_held(session: Session, customer_id: int) -> bool:
    """True when the customer, or any of their invoices, is under an active hold."""
    return bool(session.scalar(
        sa.select(sa.func.count()).select_from(LegalHold)
        .outerjoin(Invoice, Invoice.id == LegalHold.invoice_id)
        .where(LegalHold.released_at.is_(None),
               sa.or_(LegalHold.customer_id == customer_id, Invoice.customer_id == customer_id))))
