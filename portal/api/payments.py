"""/api/v1/payments: record a payment or refund from a billing system or payment provider."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from distribution.events import record_event
from portal.api import bp
from portal.api.auth import current_caller
from portal.api.common import MONEY, answer, invoice_by_number, money, organisation, settings
from portal.api.errors import ApiError
from portal.api.spec import COMPONENTS, body, operation
from portal.db import db_session
from portal.models import Payment, PaymentKind, PaymentMethod
from portal.pay.receipts import record_payment_with_receipt
from portal.payments import PaymentError, match_by_reference

PROVIDER = "api"

PAYMENT_SCHEMA = {
    "type": "object",
    "required": ["id", "kind", "amount", "currency", "matched", "invoice_number"],
    "properties": {
        "id": {"type": "integer"}, "kind": {"enum": ["payment", "refund"]},
        "method": {"enum": [m.value for m in PaymentMethod]},
        "amount": {"type": "string"}, "currency": {"type": "string"},
        "matched": {"type": "boolean",
                    "description": "False: no invoice matched; kept for a person to assign."},
        "invoice_number": {"type": ["string", "null"]},
        "invoice_status": {"type": ["string", "null"]},
        "reference": {"type": ["string", "null"]},
        "provider_reference": {"type": "string"},
        "received_at": {"type": "string", "format": "date-time"},
    },
}
COMPONENTS["Payment"] = PAYMENT_SCHEMA


def payment_json(payment: Payment) -> dict:
    """A payment as the API shows it."""
    return {"id": payment.id, "kind": payment.kind.value, "method": payment.method.value,
            "amount": money(payment.amount), "currency": payment.currency,
            "matched": payment.invoice_id is not None,
            "invoice_number": payment.invoice.number if payment.invoice else None,
            "invoice_status": payment.invoice.status.value if payment.invoice else None,
            "reference": payment.reference, "provider_reference": payment.provider_reference,
            "received_at": payment.received_at.isoformat()}


@operation(bp, "/payments", "POST", tag="payments", scope="payments:write",
           summary="Record a payment or refund",
           body={"type": "object", "additionalProperties": False,
                 "required": ["amount", "provider_reference"],
                 "properties": {
                     "kind": {"enum": ["payment", "refund"], "default": "payment"},
                     "amount": MONEY,
                     "currency": {"type": "string", "pattern": "^[A-Z]{3}$",
                                  "description": "ISO 4217 code such as EUR; must be the "
                                                 "invoice's currency"},
                     "method": {"enum": [m.value for m in PaymentMethod],
                                "default": "bank_transfer"},
                     "received_at": {"type": "string", "format": "date-time",
                                     "pattern": r"^\d{4}-\d{2}-\d{2}T",
                                     "description": "an ISO 8601 date-time such as "
                                                    "2026-11-23T10:00:00Z (default: now)"},
                     "invoice_number": {"type": "string", "minLength": 1, "maxLength": 64},
                     "reference": {"type": "string", "minLength": 1, "maxLength": 140,
                                   "description": "the structured reference (RF…) the payer "
                                                  "gave; matched when invoice_number is absent"},
                     "provider_reference": {"type": "string", "minLength": 1, "maxLength": 128,
                                            "description": "your system's unique id of this "
                                                           "payment; recorded once"},
                     "organisation_id": {"type": "integer", "minimum": 1},
                 }},
           responses={201: ("Recorded; matched to an invoice, or kept unmatched.",
                            {"$ref": "#/components/schemas/Payment"})})
def record():
    """Record money received (or refunded). It is matched to an invoice by invoice_number,
    else by the structured reference; a payment matching no invoice is kept unmatched for a
    person to assign. A refund must name its invoice. provider_reference is unique: the same
    payment recorded twice is refused with 409."""
    data = body()
    session = db_session()
    actor = current_caller().actor
    kind = PaymentKind(data.get("kind", "payment"))
    amount = Decimal(data["amount"])
    if amount <= 0:
        raise ApiError(422, "invalid_value", "amount must be above 0; record money going back "
                       "with kind=refund.", "amount")
    received_at = _received_at(data.get("received_at"))
    method = PaymentMethod(data.get("method", "bank_transfer"))
    known = session.scalars(sa.select(Payment).where(
        Payment.provider == PROVIDER,
        Payment.provider_reference == data["provider_reference"])).first()
    if known is not None:
        raise ApiError(409, "already_recorded", f"A payment with provider_reference "
                       f"{data['provider_reference']} was recorded before (payment "
                       f"{known.id}); nothing was recorded again.", "provider_reference")
    org_id = data.get("organisation_id")
    if "invoice_number" in data:
        invoice = invoice_by_number(session, data["invoice_number"], org_id)
    else:
        org = organisation(session, org_id)
        invoice = match_by_reference(session, org.id, data.get("reference"))
    if invoice is not None and data.get("currency", invoice.currency) != invoice.currency:
        raise ApiError(422, "invalid_value", f"currency must be {invoice.currency}, the "
                       f"currency of invoice {invoice.number}.", "currency")
    if invoice is None:
        if kind is PaymentKind.REFUND:
            raise ApiError(422, "missing_field", "A refund must name its invoice: give "
                           "invoice_number (or the invoice's structured reference).",
                           "invoice_number")
        payment = _unmatched(session, org, data, amount, method, received_at, actor)
    else:
        config = settings()
        try:
            payment = record_payment_with_receipt(
                session, invoice, public_url=config.public_url,
                link_days=config.pay_link_days_after_due, amount=amount,
                received_at=received_at, method=method, provider=PROVIDER,
                provider_reference=data["provider_reference"], kind=kind,
                reference=data.get("reference"), actor=actor)
        except PaymentError as exc:
            raise ApiError(422, "invalid_value", f"{exc}.", "invoice_number") from None
    return answer(payment_json(payment), 201)


def _received_at(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, "invalid_value", "received_at must be an ISO 8601 date-time such "
                       "as 2026-11-23T10:00:00Z.", "received_at") from None
    if moment.tzinfo is None:
        raise ApiError(422, "invalid_value", "received_at needs a time zone (Z or +01:00).",
                       "received_at")
    return moment.astimezone(UTC)


def _unmatched(session, org, data, amount, method, received_at, actor) -> Payment:
    currency = data.get("currency", org.default_currency)
    payment = Payment(organisation_id=org.id, invoice_id=None, customer_id=None,
                      kind=PaymentKind.PAYMENT, method=method, amount=amount, currency=currency,
                      received_at=received_at, reference=data.get("reference"),
                      provider=PROVIDER, provider_reference=data["provider_reference"])
    session.add(payment)
    session.flush()
    record_event(session, "payment", str(payment.id), "payment.unmatched",
                 {"amount": str(amount), "currency": currency,
                  "reference": data.get("reference"),
                  "provider_reference": data["provider_reference"]}, actor=actor)
    return payment
