"""Receipts: when money comes in, the customer hears so through distribution.

A receipt is an ordinary message of type ``receipt`` (texts in
:mod:`distribution.templates`, in the customer's language), planned as a run of
its own whose one wave starts at once, around the clock and without throttle:
the dispatcher releases it on its next tick, after this transaction commits,
and the customer's preferences and the delivery log apply as for any message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from babel.numbers import format_currency
from sqlalchemy.orm import Session

from distribution.runs import MessageSpec, RunSummary, WaveOptions, create_run, start_wave
from portal.issuing import invoice_key
from portal.models import Invoice, Payment, PaymentKind
from portal.pay.links import issue_links, link_url
from portal.payments import record_payment
from portal.recipients_sync import recipient_key, sync_customer
from portal.runs import LOCALES

MESSAGE_TYPE = "receipt"
# Sent at once, any hour of any day: a receipt answers something the customer just did.
RECEIPT_WAVE = WaveOptions(rate_per_minute=600.0, window_start_hour=0, window_end_hour=24,
                           weekdays=tuple(range(7)))


def receipt_subject_key(invoice: Invoice, payment: Payment) -> str:
    """One receipt per payment, however often it is asked for."""
    return f"{MESSAGE_TYPE}:{invoice_key(invoice)}:{payment.id}"


def send_receipts(session: Session, payments: Sequence[Payment], *, public_url: str,
                  link_days: int, actor: str) -> RunSummary | None:
    """Plan a receipt for each payment (refunds and unmatched money get none).

    Each receipt carries a fresh "review & pay" link to its invoice. Returns the
    run, or None when there was nothing to acknowledge. Flushes, never commits.
    """
    paid = [p for p in payments if p.kind is PaymentKind.PAYMENT and p.invoice is not None]
    if not paid:
        return None
    tokens = issue_links(session, list({p.invoice.id: p.invoice for p in paid}.values()),
                         days=link_days, purpose="receipt", actor=actor)
    for customer in {p.invoice.customer for p in paid}:
        sync_customer(session, customer, actor=actor)
    specs = [receipt_spec(p, link_url(public_url, tokens[p.invoice.id])) for p in paid]
    summary = create_run(session, name=f"receipts: {', '.join(p.invoice.number for p in paid)}"
                         [:200], message_type=MESSAGE_TYPE, specs=specs,
                         selection={"kind": MESSAGE_TYPE, "payment_ids": [p.id for p in paid]},
                         created_by=actor, options=RECEIPT_WAVE)
    for wave in summary.run.waves:
        start_wave(session, wave.id, actor=actor)
    return summary


def receipt_spec(payment: Payment, link: str) -> MessageSpec:
    """The receipt for one payment, formatted in the customer's language."""
    invoice = payment.invoice
    customer = invoice.customer
    locale = LOCALES.get(customer.language, "en_IE")
    return MessageSpec(
        recipient_key=recipient_key(customer),
        subject_key=receipt_subject_key(invoice, payment),
        parameters={
            "customer_name": customer.name,
            "seller_name": invoice.organisation.display_name,
            "number": invoice.number,
            "amount": format_currency(payment.amount, payment.currency, locale=locale),
            "due_date": "",
            "link": link,
        },
        link=link,
    )


def record_payment_with_receipt(session: Session, invoice: Invoice, *, public_url: str,
                                link_days: int, **payment: Any) -> Payment:
    """:func:`portal.payments.record_payment`, then a receipt for a payment (not a refund)."""
    recorded = record_payment(session, invoice, **payment)
    send_receipts(session, [recorded], public_url=public_url, link_days=link_days,
                  actor=payment["actor"])
    return recorded
