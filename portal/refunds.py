"""Refund and credit requests: asked for with a reason, approved at once or by finance.

A request names one issued invoice and an amount that may not exceed what can
still be given back: for a refund, what was paid on the invoice (net of refunds)
less the refunds still waiting for a decision; for a credit, the invoice's amount
not yet credited by credit notes nor refunded, less the credits still waiting (a
paid invoice may be credited: the customer's credit balance then pays the next
bill, as telecom and utility customers expect). Requests up to the configured limit, in the
seller's own currency, are approved when made; the others wait for a finance
approver. Approving a refund records the refund payment; approving a credit
records what the billing system must issue as a credit note (Herald does not
number legal documents itself: the credit note comes back through the import).
Each request leaves ``refund.requested`` and, once decided, ``refund.decided``, on the
invoice's events (subject ``invoice`` ``<organisation id>:<number>``) with the payload
outbound webhooks announce (:mod:`distribution.webhooks`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from babel.numbers import get_currency_precision
from sqlalchemy.orm import Session

from distribution.events import record_event
from portal.issuing import invoice_key
from portal.masking import mask_payment_details
from portal.models import (
    DocumentKind,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentKind,
    PaymentMethod,
)
from portal.models.base import utcnow
from portal.models.refunds import RefundKind, RefundRequest, RefundStatus
from portal.payments import PaymentError, amount_paid, record_payment

AUTO_ACTOR = "herald:auto-approve"
REFUND_PROVIDER = "herald"
# Amounts are stored with at most 2 decimals (the Money column), whatever the currency allows.
STORED_DECIMALS = 2


class RefundError(ValueError):
    """A request or decision cannot be made as given; ``field`` names what to fix."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def currency_decimals(currency: str) -> int:
    """How many decimals an amount in ``currency`` may have (EUR 2, JPY 0)."""
    return min(get_currency_precision(currency.upper()), STORED_DECIMALS)


def parse_amount(text: str, currency: str, field: str = "amount") -> Decimal:
    """``text`` as an amount above 0 in ``currency``; never a float, never rounded."""
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError):
        raise RefundError(f"{field} must be a decimal string such as '12.50'.", field) from None
    if not value.is_finite() or value <= 0:
        raise RefundError(f"{field} must be above 0.", field)
    allowed = currency_decimals(currency)
    if -value.as_tuple().exponent > allowed:
        raise RefundError(f"{field} {text} has more decimals than {currency} allows "
                          f"({allowed}); send e.g. '{value.quantize(Decimal(1).scaleb(-allowed))}'"
                          ".", field)
    return value


def _pending(session: Session, invoice: Invoice, kind: RefundKind) -> Decimal:
    amounts = session.scalars(sa.select(RefundRequest.amount).where(
        RefundRequest.invoice_id == invoice.id, RefundRequest.kind == kind,
        RefundRequest.status == RefundStatus.PENDING))
    # Summed here, not in SQL: SQLite keeps amounts as text.
    return sum(amounts, Decimal("0.00"))


def available(session: Session, invoice: Invoice, kind: RefundKind) -> Decimal:
    """What a new request of ``kind`` may still ask for on ``invoice``."""
    if kind is RefundKind.REFUND:
        base = amount_paid(session, invoice)
    else:
        from portal.rendering import credited_amount  # rendering pulls in the PDF code

        refunded = session.scalars(sa.select(Payment.amount).where(
            Payment.invoice_id == invoice.id, Payment.kind == PaymentKind.REFUND))
        base = invoice.payable_amount - credited_amount(session, invoice) \
            - sum(refunded, Decimal("0.00"))
    return max(base - _pending(session, invoice, kind), Decimal("0.00"))


def _limit_text(kind: RefundKind, invoice: Invoice, left: Decimal) -> str:
    what = ("paid on it and not yet refunded or asked back" if kind is RefundKind.REFUND
            else "left on it not yet credited, refunded or asked as a credit")
    return f"{left:.2f} {invoice.currency} is {what}"


def create_request(session: Session, invoice: Invoice, *, kind: RefundKind, amount: Decimal,
                   reason: str, context: dict[str, str], actor: str,
                   auto_approve_limit: Decimal, now: datetime | None = None) -> RefundRequest:
    """Add a request (flushes, never commits); approve it at once when under the limit."""
    if invoice.kind is not DocumentKind.INVOICE:
        raise RefundError(f"{invoice.number} is a credit note; ask on the invoice it "
                          "corrects.", "invoice_number")
    if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.VOID) or invoice.ubl_sha256 is None:
        raise RefundError(f"invoice {invoice.number} is {invoice.status.value}; refunds and "
                          "credits are for issued invoices only.", "invoice_number")
    left = available(session, invoice, kind)
    if amount > left:
        raise RefundError(f"amount {amount} is more than can be given back on "
                          f"{invoice.number}: {_limit_text(kind, invoice, left)}.", "amount")
    request = RefundRequest(
        organisation_id=invoice.organisation_id, customer_id=invoice.customer_id,
        invoice_id=invoice.id, kind=kind, status=RefundStatus.PENDING, amount=amount,
        currency=invoice.currency, reason=mask_payment_details(reason.strip()),
        context={k: mask_payment_details(v) for k, v in context.items()},
        requested_by=actor, created_at=now or utcnow())
    session.add(request)
    session.flush()
    automatic = 0 < amount <= auto_approve_limit and \
        invoice.currency == invoice.organisation.default_currency
    record_event(session, "invoice", invoice_key(invoice), "refund.requested",
                 _payload(request, invoice) | {
                     "status": "approved" if automatic else "pending_approval",
                     "context": request.context, "requested_by": actor}, actor=actor)
    if automatic:
        decide(session, request, approve=True, actor=AUTO_ACTOR, now=now,
               note=f"at or under the automatic approval limit of {auto_approve_limit:.2f} "
                    f"{invoice.currency}")
    return request


def _payload(request: RefundRequest, invoice: Invoice) -> dict:
    """What both events say (the fields outbound webhooks rely on, and the request's own)."""
    return {"refund_request_id": request.id, "kind": request.kind.value,
            "amount": str(request.amount), "currency": request.currency,
            "invoice_number": invoice.number, "customer_id": request.customer_id,
            "reason": request.reason}


def decide(session: Session, request: RefundRequest, *, approve: bool, actor: str,
           note: str = "", now: datetime | None = None) -> RefundRequest:
    """Approve or reject a pending request once; a second decision is refused.

    The status moves with one conditional UPDATE (``WHERE status = 'pending'``), so of
    two approvers deciding at the same moment exactly one wins.
    """
    status = RefundStatus.APPROVED if approve else RefundStatus.REJECTED
    note = mask_payment_details(note.strip())
    invoice = request.invoice
    if approve and request.kind is RefundKind.REFUND:
        if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.VOID):
            raise RefundError(f"invoice {invoice.number} is {invoice.status.value} now; no "
                              "refund can be recorded on it: reject this request.",
                              "invoice_number")
        paid = amount_paid(session, invoice)
        if request.amount > paid:
            raise RefundError(f"only {paid:.2f} {invoice.currency} is paid on "
                              f"{invoice.number} now; reject this request or wait for the "
                              "payment.", "amount")
    changed = session.execute(
        sa.update(RefundRequest)
        .where(RefundRequest.id == request.id, RefundRequest.status == RefundStatus.PENDING)
        .values(status=status, decided_by=actor, decided_at=now or utcnow(),
                decision_note=note or None, auto_approved=approve and actor == AUTO_ACTOR)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        session.refresh(request)
        raise RefundError(f"request {request.id} was already {request.status.value} by "
                          f"{request.decided_by}; nothing was changed.", "status")
    session.refresh(request)
    payload = _payload(request, invoice) | {
        "status": status.value, "decision": status.value, "decided_by": actor,
        "note": note or None, "auto": actor == AUTO_ACTOR}
    if approve and request.kind is RefundKind.REFUND:
        try:
            payment = record_payment(
                session, invoice, amount=request.amount, received_at=now or utcnow(),
                method=_refund_method(session, invoice), provider=REFUND_PROVIDER,
                provider_reference=f"refund-request:{request.id}", kind=PaymentKind.REFUND,
                actor=actor)
        except PaymentError as exc:
            raise RefundError(f"{exc}.", "invoice_number") from None
        request.payment_id = payment.id
        payload["payment_id"] = payment.id
    elif approve:
        payload["credit_note_to_issue"] = {
            "preceding_invoice_number": invoice.number, "amount": str(request.amount),
            "currency": request.currency}
    session.flush()
    record_event(session, "invoice", invoice_key(invoice), "refund.decided", payload,
                 actor=actor)
    return request


def _refund_method(session: Session, invoice: Invoice) -> PaymentMethod:
    """Money goes back the way it came: the method of the invoice's latest payment."""
    method = session.scalar(sa.select(Payment.method).where(
        Payment.invoice_id == invoice.id, Payment.kind == PaymentKind.PAYMENT)
        .order_by(Payment.received_at.desc(), Payment.id.desc()).limit(1))
    return method or PaymentMethod.OTHER


def pending_requests(session: Session, limit: int = 200) -> list[RefundRequest]:
    """Requests waiting for a finance approver, oldest first."""
    return list(session.scalars(sa.select(RefundRequest).where(
        RefundRequest.status == RefundStatus.PENDING)
        .order_by(RefundRequest.created_at, RefundRequest.id).limit(limit)))


def recent_decisions(session: Session, limit: int = 20) -> list[RefundRequest]:
    """The latest decided requests, newest first."""
    return list(session.scalars(sa.select(RefundRequest).where(
        RefundRequest.status != RefundStatus.PENDING)
        .order_by(RefundRequest.decided_at.desc(), RefundRequest.id.desc()).limit(limit)))
