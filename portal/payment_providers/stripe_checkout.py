"""Stripe Checkout: a Checkout Session per payment, and the webhook that records the money.

The customer pays on Stripe's page; Herald learns of it only from Stripe's
signed webhook (``checkout.session.completed``, and the async variant for
payment methods that settle later), never from the customer's browser coming
back. Each event is handled once: its id goes into ``processed_provider_events``
in the same transaction as the payment, so a replay records nothing. Refunds
(``charge.refunded``) carry the cumulative refunded amount; the part not yet
recorded becomes a refund.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
import stripe
from babel.numbers import get_currency_precision
from sqlalchemy.orm import Session

from portal.models import Invoice, Payment, PaymentKind, PaymentMethod, ProcessedProviderEvent
from portal.payment_providers.base import PaymentRequest, PaymentUnavailable, Redirect
from portal.payments import PaymentError, record_payment

log = logging.getLogger(__name__)

PROVIDER = "stripe"
METADATA_INVOICE = "herald_invoice_id"
COMPLETED = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
REFUNDED = "charge.refunded"


def to_minor_units(amount: Decimal, currency: str) -> int:
    """``12.34`` EUR → ``1234``; Stripe takes amounts in the currency's smallest unit."""
    exponent = get_currency_precision(currency.upper())
    minor = amount.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} {currency} has more decimals than the currency allows")
    return int(minor)


def from_minor_units(minor: int, currency: str) -> Decimal:
    """``1234`` EUR → ``Decimal("12.34")``."""
    exponent = get_currency_precision(currency.upper())
    return (Decimal(minor).scaleb(-exponent)).quantize(Decimal(1).scaleb(-exponent))


class StripeCheckout:
    """Card (and other) payments on Stripe's hosted Checkout page."""

    name = PROVIDER

    def __init__(self, secret_key: str, *, api_base: str | None = None) -> None:
        base = {"api": api_base} if api_base else None
        # Two retries with Stripe's own idempotency keys: a timeout never makes two sessions.
        self.client = stripe.StripeClient(secret_key, base_addresses=base,
                                          max_network_retries=2)

    def start_payment(self, request: PaymentRequest) -> Redirect:
        """Create a Checkout Session for ``request.amount`` and send the customer to it."""
        invoice = request.invoice
        try:
            unit_amount = to_minor_units(request.amount, invoice.currency)
        except ValueError as error:
            raise PaymentUnavailable(str(error)) from None
        metadata = {METADATA_INVOICE: str(invoice.id), "invoice_number": invoice.number,
                    "organisation_id": str(invoice.organisation_id)}
        params: dict[str, Any] = {
            "mode": "payment",
            "client_reference_id": f"invoice-{invoice.id}",
            "line_items": [{"quantity": 1, "price_data": {
                "currency": invoice.currency.lower(), "unit_amount": unit_amount,
                "product_data": {"name": f"{invoice.organisation.display_name} "
                                         f"{invoice.number}"}}}],
            "metadata": metadata,
            # The charge carries it too, so a refund event finds its invoice.
            "payment_intent_data": {"metadata": metadata},
            "success_url": request.return_url,
            "cancel_url": request.cancel_url,
        }
        if request.customer_email:
            params["customer_email"] = request.customer_email
        try:
            checkout = self.client.v1.checkout.sessions.create(params=params)
        except stripe.StripeError as error:
            # Stripe's message may name our account's settings; the customer gets a plain one.
            log.warning("Stripe refused a Checkout Session for invoice %s: %s (%s)",
                        invoice.id, type(error).__name__, error.code or error.http_status)
            raise PaymentUnavailable("card payment is not available right now") from None
        return Redirect(checkout.url)


class WebhookRejected(Exception):
    """The request is not a genuine Stripe event (bad signature, old timestamp, not JSON)."""


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """What handling one event did (for the response and the log)."""

    event_id: str
    event_type: str
    outcome: str
    payment: Payment | None = None
    duplicate: bool = False


def verify_event(payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """The event, once its ``Stripe-Signature`` proves Stripe sent it within five minutes."""
    if not signature:
        raise WebhookRejected("no Stripe-Signature header")
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except ValueError as error:
        raise WebhookRejected(f"not a Stripe event: {error}") from None
    except stripe.SignatureVerificationError:
        raise WebhookRejected("signature does not match, or its timestamp is too old") from None
    return event.to_dict()


def handle_event(session: Session, event: dict[str, Any], *, public_url: str,
                 link_days: int) -> WebhookOutcome:
    """Apply one verified event, once. Flushes, never commits."""
    event_id, event_type = str(event["id"]), str(event.get("type", ""))
    marker = ProcessedProviderEvent(provider=PROVIDER, event_id=event_id,
                                    event_type=event_type[:64], outcome="handling")
    try:
        with session.begin_nested():
            session.add(marker)
    except sa.exc.IntegrityError:
        return WebhookOutcome(event_id, event_type, "already handled", duplicate=True)
    obj = event.get("data", {}).get("object", {})
    if event_type in COMPLETED:
        outcome, payment = _completed(session, obj, event, public_url, link_days)
    elif event_type == REFUNDED:
        outcome, payment = _refunded(session, obj, event)
    else:
        outcome, payment = "ignored: not an event Herald uses", None
    marker.outcome = outcome[:200]
    return WebhookOutcome(event_id, event_type, outcome, payment)


def _completed(session: Session, checkout: dict[str, Any], event: dict[str, Any],
               public_url: str, link_days: int) -> tuple[str, Payment | None]:
    from portal.pay.receipts import record_payment_with_receipt  # it imports the providers

    if checkout.get("payment_status") not in ("paid", "no_payment_required"):
        return "waiting: the payment has not settled yet", None
    invoice = _invoice(session, checkout.get("metadata") or {})
    if invoice is None:
        return "ignored: no invoice of ours in the metadata", None
    currency = str(checkout.get("currency") or "").upper()
    if currency != invoice.currency:
        return f"refused: paid in {currency}, the invoice is in {invoice.currency}", None
    reference = checkout.get("payment_intent") or checkout["id"]
    if _payment(session, reference) is not None:
        return "already recorded", None
    amount = from_minor_units(int(checkout.get("amount_total") or 0), currency)
    if amount <= 0:
        return "ignored: nothing was paid", None
    try:
        payment = record_payment_with_receipt(
            session, invoice, public_url=public_url, link_days=link_days, amount=amount,
            received_at=datetime.fromtimestamp(int(event.get("created") or 0), UTC),
            method=PaymentMethod.CARD, provider=PROVIDER, provider_reference=reference,
            reference=reference, actor="stripe:webhook")
    except PaymentError as error:
        return f"refused: {error}", None
    return f"payment of {amount} {currency} recorded", payment


def _refunded(session: Session, charge: dict[str, Any], event: dict[str, Any]
              ) -> tuple[str, Payment | None]:
    reference = charge.get("payment_intent") or charge.get("id")
    original = _payment(session, reference)
    if original is None or original.invoice is None:
        return "ignored: the charge is not a payment Herald recorded", None
    currency = str(charge.get("currency") or "").upper()
    refunded = from_minor_units(int(charge.get("amount_refunded") or 0), currency)
    already = sum((p.amount for p in session.scalars(sa.select(Payment).where(
        Payment.provider == PROVIDER, Payment.kind == PaymentKind.REFUND,
        Payment.reference == reference))), Decimal("0.00"))
    delta = refunded - already
    if delta <= 0:
        return "already recorded", None
    refund = record_payment(
        session, original.invoice, amount=delta, kind=PaymentKind.REFUND,
        received_at=datetime.fromtimestamp(int(event.get("created") or 0), UTC),
        method=PaymentMethod.CARD, provider=PROVIDER,
        # The cumulative amount makes each step of a refund its own row, once.
        provider_reference=f"{charge.get('id')}:refunded:{charge.get('amount_refunded')}",
        reference=reference, actor="stripe:webhook")
    return f"refund of {delta} {currency} recorded", refund


def _invoice(session: Session, metadata: dict[str, Any]) -> Invoice | None:
    raw = str(metadata.get(METADATA_INVOICE) or "")
    return session.get(Invoice, int(raw)) if raw.isdigit() else None


def _payment(session: Session, reference: str | None) -> Payment | None:
    if not reference:
        return None
    return session.scalars(sa.select(Payment).where(
        Payment.provider == PROVIDER, Payment.kind == PaymentKind.PAYMENT,
        Payment.provider_reference == reference)).first()
