"""Recording payments moves an invoice between issued, partially paid and paid."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from distribution.events import events_for
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.models import Invoice, InvoiceStatus, PaymentKind, PaymentMethod
from portal.payments import PaymentError, amount_paid, record_payment
from tests.factories import INVOICE_JSON_PAYABLE, invoice_json, make_customer, make_organisation


@pytest.fixture
def invoice(session) -> Invoice:
    org = make_organisation(session)
    make_customer(session, org)
    doc = document_from_mapping(invoice_json(), Locator("test", "document 1"), source="json")
    import_documents(session, [doc], file="test")
    return session.query(Invoice).filter_by(number="INV-1").one()


def _pay(session, invoice, amount, reference, kind=PaymentKind.PAYMENT):
    return record_payment(session, invoice, amount=Decimal(amount), kind=kind,
                          received_at=datetime(2026, 10, 5, tzinfo=UTC),
                          method=PaymentMethod.BANK_TRANSFER, provider="bank",
                          provider_reference=reference, actor="test")


def test_partial_then_full_payment_then_refund(session, invoice):
    assert invoice.payable_amount == INVOICE_JSON_PAYABLE
    _pay(session, invoice, "100.00", "L1")
    assert invoice.status is InvoiceStatus.PARTIALLY_PAID
    _pay(session, invoice, "20.15", "L2")
    assert invoice.status is InvoiceStatus.PAID
    assert amount_paid(session, invoice) == INVOICE_JSON_PAYABLE
    _pay(session, invoice, "20.15", "R1", kind=PaymentKind.REFUND)
    assert invoice.status is InvoiceStatus.PARTIALLY_PAID
    kinds = [e.kind for e in events_for(session, "invoice", f"{invoice.organisation_id}:INV-1")]
    assert kinds == ["invoice.imported", "payment.recorded", "payment.recorded",
                     "refund.recorded"]


def test_a_disputed_invoice_keeps_its_status_when_paid(session, invoice):
    invoice.status = InvoiceStatus.DISPUTED
    _pay(session, invoice, "120.15", "L1")
    assert invoice.status is InvoiceStatus.DISPUTED


@pytest.mark.parametrize("amount", ["0", "-5"])
def test_amount_must_be_positive(session, invoice, amount):
    with pytest.raises(PaymentError, match="above 0"):
        _pay(session, invoice, amount, "L1")
