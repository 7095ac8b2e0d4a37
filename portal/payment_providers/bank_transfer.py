"""Bank transfer: the seller's account, the amount, the structured reference and an EPC QR code.

Nothing is sent anywhere when a customer chooses it; the money arrives later on
the seller's bank account and is recorded through an import or the API, where
:func:`portal.payments.match_by_reference` finds the invoice by its reference.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from decimal import Decimal

import segno
from sqlalchemy.orm import Session

from distribution.events import record_event
from einvoice.creditor_reference import format_creditor_reference, is_valid_creditor_reference
from einvoice.pdf.epc import epc_qr_payload
from portal.models import Invoice, Organisation, Payment, PaymentKind, PaymentMethod
from portal.payment_providers.base import Instructions, PaymentRequest
from portal.payments import match_by_reference


class BankTransfer:
    """Pay by bank transfer with the invoice's reference."""

    name = "bank_transfer"

    def start_payment(self, request: PaymentRequest) -> Instructions:
        """The transfer details for ``request.amount`` of the invoice."""
        return transfer_instructions(request.invoice, request.amount)


def transfer_instructions(invoice: Invoice, amount: Decimal) -> Instructions:
    """The details to pay ``amount`` of ``invoice`` by transfer (the QR only in EUR)."""
    org = invoice.organisation
    reference = invoice.payment_reference or invoice.number
    structured = is_valid_creditor_reference(reference)
    qr = None
    if invoice.currency == "EUR" and amount > 0 and org.iban:
        try:
            qr = epc_qr_payload(name=org.legal_name, iban=org.iban, bic=org.bic,
                                amount=amount.quantize(Decimal("0.01")),
                                reference=re.sub(r"\s", "", reference) if structured else None,
                                text=None if structured else reference)
        except ValueError:
            qr = None  # details a banking app would refuse: the page shows them without a code
    return Instructions(
        beneficiary=org.legal_name, iban=_groups(org.iban or ""), bic=org.bic, amount=amount,
        currency=invoice.currency,
        reference=format_creditor_reference(reference.upper()) if structured else reference,
        structured=structured, qr_payload=qr)


def qr_svg(payload: str) -> bytes:
    """The EPC QR code as an SVG document (served as an image; no inline style)."""
    buffer = io.BytesIO()
    segno.make(payload, error="m", micro=False, encoding="utf-8", boost_error=False).save(
        buffer, kind="svg", scale=6, border=4, xmldecl=True, svgclass="epc-qr",
        title="EPC QR")
    return buffer.getvalue()


def record_bank_payment(session: Session, organisation: Organisation, *, amount: Decimal,
                        reference: str | None, received_at: datetime, provider_reference: str,
                        actor: str, public_url: str, link_days: int) -> Payment:
    """Record money received on the seller's account, matched to an invoice by reference.

    A match is recorded against the invoice (its status follows, and the
    customer gets a receipt); money that matches no invoice is kept unmatched,
    for a person to assign, with an event saying so. Flushes, never commits.
    """
    from portal.pay.receipts import record_payment_with_receipt  # it imports this package

    invoice = match_by_reference(session, organisation.id, reference)
    if invoice is not None:
        return record_payment_with_receipt(
            session, invoice, public_url=public_url, link_days=link_days, amount=amount,
            received_at=received_at, method=PaymentMethod.BANK_TRANSFER, provider="bank",
            provider_reference=provider_reference, reference=reference, actor=actor)
    payment = Payment(organisation_id=organisation.id, invoice_id=None, customer_id=None,
                      kind=PaymentKind.PAYMENT, method=PaymentMethod.BANK_TRANSFER,
                      amount=amount, currency=organisation.default_currency,
                      received_at=received_at, reference=(reference or "")[:140] or None,
                      provider="bank", provider_reference=provider_reference)
    session.add(payment)
    session.flush()
    record_event(session, "payment", str(payment.id), "payment.unmatched",
                 {"amount": str(amount), "reference": reference,
                  "provider_reference": provider_reference}, actor=actor)
    return payment


def _groups(iban: str) -> str:
    compact = re.sub(r"\s", "", iban).upper()
    return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))
