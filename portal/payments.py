"""Recording payments and refunds, and the invoice status they imply."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.events import record_event
from einvoice.creditor_reference import format_creditor_reference, is_valid_creditor_reference
from portal.models import (
    DocumentKind,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentKind,
    PaymentMethod,
)

# Statuses that payments move between; void, disputed and draft are set by people, not by money.
PAYMENT_DRIVEN = {InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID}


class PaymentError(ValueError):
    """A payment cannot be recorded as given; the message says why."""


def amount_paid(session: Session, invoice: Invoice) -> Decimal:
    """Payments minus refunds recorded against ``invoice``."""
    # Summed here, not in SQL: SQLite keeps amounts as text and would sum them as floats.
    payments = session.scalars(sa.select(Payment).where(Payment.invoice_id == invoice.id))
    return sum((payment.signed_amount for payment in payments), Decimal("0.00"))


def record_payment(
    session: Session,
    invoice: Invoice,
    *,
    amount: Decimal,
    received_at: datetime,
    method: PaymentMethod,
    provider: str,
    provider_reference: str,
    kind: PaymentKind = PaymentKind.PAYMENT,
    reference: str | None = None,
    actor: str,
) -> Payment:
    """Record a payment or refund against ``invoice`` and update its status.

    ``provider_reference`` is unique per provider, so the same bank line or
    webhook recorded twice is refused by the database instead of counted twice.
    """
    if not isinstance(amount, Decimal) or amount <= 0:
        raise PaymentError("amount must be a Decimal above 0; record a refund with kind=refund")
    if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.VOID):
        raise PaymentError(f"invoice {invoice.number} is {invoice.status.value}; "
                           "payments go against issued invoices only")
    payment = Payment(
        organisation_id=invoice.organisation_id, invoice_id=invoice.id,
        customer_id=invoice.customer_id, kind=kind, method=method, amount=amount,
        currency=invoice.currency, received_at=received_at, reference=reference,
        provider=provider, provider_reference=provider_reference,
    )
    session.add(payment)
    session.flush()
    before = invoice.status
    if invoice.status in PAYMENT_DRIVEN:
        invoice.status = status_for(invoice.payable_amount, amount_paid(session, invoice))
    if invoice.status is InvoiceStatus.PAID and before is not InvoiceStatus.PAID:
        from portal.reminders import stop_reminders  # it imports this module

        stop_reminders(session, invoice, reason="paid", actor=actor)
    record_event(session, "invoice", f"{invoice.organisation_id}:{invoice.number}",
                 f"{kind.value}.recorded",
                 {"amount": str(amount), "currency": invoice.currency, "method": method.value,
                  "provider": provider, "provider_reference": provider_reference,
                  "status_before": before.value, "status_after": invoice.status.value},
                 actor=actor)
    return payment


def status_for(payable: Decimal, paid: Decimal) -> InvoiceStatus:
    """The status an issued invoice has when ``paid`` of ``payable`` has come in."""
    if paid <= 0:
        return InvoiceStatus.ISSUED
    if paid >= payable:
        return InvoiceStatus.PAID
    return InvoiceStatus.PARTIALLY_PAID


def open_balance(session: Session, invoice: Invoice) -> Decimal:
    """What is still to pay: the amount due minus payments (net of refunds) and credit notes."""
    from portal.rendering import credited_amount  # rendering pulls in the PDF code

    balance = invoice.payable_amount - amount_paid(session, invoice) \
        - credited_amount(session, invoice)
    return max(balance, Decimal("0.00"))


def match_by_reference(session: Session, organisation_id: int, reference: str | None
                       ) -> Invoice | None:
    """The seller's issued invoice whose payment reference is ``reference``, or None.

    Bank lines carry the reference as the payer typed or scanned it: spaces and
    case do not matter. An RF reference whose check digits are wrong matches
    nothing (it is a typo, and the nearest invoice would be a guess), nor does a
    reference two invoices share.
    """
    compact = re.sub(r"\s", "", reference or "").upper()
    if not compact or len(compact) > 140:
        return None
    if compact.startswith("RF") and not is_valid_creditor_reference(compact):
        return None
    # Stored as imported: compact, or in the groups of four people write.
    forms = {compact, format_creditor_reference(compact)}
    candidates = session.scalars(sa.select(Invoice).where(
        Invoice.organisation_id == organisation_id, Invoice.kind == DocumentKind.INVOICE,
        Invoice.ubl_sha256.is_not(None),
        sa.func.upper(Invoice.payment_reference).in_(forms)).limit(2)).all()
    return candidates[0] if len(candidates) == 1 else None
