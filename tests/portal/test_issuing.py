"""Issuing freezes an invoice: UBL written once, validated with the official rules, stored."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import einvoice
from distribution.documents import DatabaseStore
from distribution.events import events_for
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.issuing import IssuingRefused, issue_invoice
from portal.models import Invoice, InvoiceStatus
from tests.conftest import RULES_DIR
from tests.factories import INVOICE_JSON_PAYABLE, invoice_json, make_customer, make_organisation

needs_rules = pytest.mark.skipif(not RULES_DIR.is_dir(), reason=f"no rules at {RULES_DIR}")


def _import(session, **overrides) -> Invoice:
    document = invoice_json(**overrides)
    doc = document_from_mapping(document, Locator("t", "1"), source="json")
    import_documents(session, [doc], file="t")
    return session.scalars(sa.select(Invoice).where(Invoice.number == document["number"])).one()


@pytest.fixture
def org(session):
    org = make_organisation(session)
    make_customer(session, org, "C1")
    make_customer(session, org, "C2", kind="business", name="Acme BV",
                  vat_id="BE0403019261", peppol_endpoint_scheme="0208",
                  peppol_endpoint_id="0403019261")
    return org


@needs_rules
def test_issuing_writes_valid_ubl_once(session, org):
    invoice = _import(session, customer="C2", status="draft")
    assert invoice.status is InvoiceStatus.DRAFT
    store = DatabaseStore()
    digest = issue_invoice(session, invoice, store=store, rules_dir=RULES_DIR, actor="test")
    assert invoice.status is InvoiceStatus.ISSUED and invoice.ubl_sha256 == digest
    ubl = store.get(session, digest)
    findings = einvoice.validate(ubl, RULES_DIR)
    assert findings.fatal == [] and {"xsd", "cen", "peppol"} <= set(findings.ran)
    read_back = einvoice.read_ubl(ubl)
    assert read_back.totals.payable == INVOICE_JSON_PAYABLE
    assert read_back.buyer.endpoint_id == "0403019261"
    # issuing again changes nothing and writes nothing new
    assert issue_invoice(session, invoice, store=store, rules_dir=RULES_DIR, actor="test") == digest
    kinds = [e.kind for e in events_for(session, "invoice", f"{org.id}:INV-1")]
    assert kinds == ["invoice.imported", "invoice.issued"]


@needs_rules
def test_a_consumer_gets_an_email_endpoint_and_passes_en16931(session, org):
    invoice = _import(session)
    digest = issue_invoice(session, invoice, store=DatabaseStore(), rules_dir=RULES_DIR,
                           actor="test")
    ubl = DatabaseStore().get(session, digest)
    assert b'<cbc:EndpointID schemeID="EM">c1@example.com</cbc:EndpointID>' in ubl
    findings = einvoice.validate(ubl, RULES_DIR)
    assert [f for f in findings.fatal if f.source in ("xsd", "cen")] == []


@needs_rules
def test_a_fatal_finding_stops_issuing(session, org):
    invoice = _import(session, customer="C2", status="draft")
    invoice.buyer_reference = None  # Peppol needs a buyer or an order reference
    with pytest.raises(IssuingRefused) as refused:
        issue_invoice(session, invoice, store=DatabaseStore(), rules_dir=RULES_DIR, actor="t")
    assert [p.rule for p in refused.value.problems] == ["PEPPOL-EN16931-R003"]
    assert invoice.status is InvoiceStatus.DRAFT and invoice.ubl_sha256 is None


def test_a_void_invoice_is_not_issued(session, org):
    invoice = _import(session, status="draft")
    invoice.status = InvoiceStatus.VOID
    with pytest.raises(IssuingRefused, match="void"):
        issue_invoice(session, invoice, store=DatabaseStore(), rules_dir=None, actor="t")


def test_issuing_leaves_the_pdf_to_the_worker(session, org):
    # Rendering costs about 150 ms a document; a bulk import must not pay it inline.
    invoice = _import(session, status="draft")
    issue_invoice(session, invoice, store=DatabaseStore(), rules_dir=None, actor="t",
                  official_rules=False)
    assert invoice.ubl_sha256 and invoice.pdf_sha256 is None
