"""Issuing freezes an invoice: UBL written once, validated with the official rules, stored."""

from __future__ import annotations

import json
from io import BytesIO

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

import einvoice
from distribution.channels.base import ChannelName
from distribution.documents import DatabaseStore
from distribution.events import events_for
from distribution.preferences import ensure_message_types, set_preference
from portal.db import get_database
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.issuing import IssuingRefused, issue_invoice, ubl_as_sent
from portal.models import Customer, Invoice, InvoiceStatus
from portal.recipients_sync import sync_customer
from tests.conftest import RULES_DIR
from tests.factories import INVOICE_JSON_PAYABLE, invoice_json, make_customer, make_organisation
from tests.portal import test_runs_end_to_end as end_to_end

# The end-to-end fixtures: an app with its own database, SMTP and Peppol peers on loopback.
herald = end_to_end.herald
smtp_peer = end_to_end.smtp_peer
_dispatch = end_to_end._dispatch
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


# --- The PDF inside the UBL, for customers who want it (sent through real peers) ---------

def _wants_pdf_in_ubl(app, name: str, channels, email_attachments=None) -> None:
    with get_database(app).session_scope() as session:
        ensure_message_types(session)
        customer = session.scalars(sa.select(Customer).where(Customer.name == name)).one()
        customer.embed_pdf_in_ubl = True
        set_preference(session, sync_customer(session, customer, actor="test"), "*", channels,
                       email_attachments=email_attachments)


def _stored(app, number: str) -> tuple[bytes, bytes, bytes]:
    """The stored UBL, the stored PDF and what ubl_as_sent derives from them."""
    with get_database(app).session_scope() as session:
        invoice = session.scalars(sa.select(Invoice).where(Invoice.number == number)).one()
        store = DatabaseStore()
        return (store.get(session, invoice.ubl_sha256), store.get(session, invoice.pdf_sha256),
                ubl_as_sent(session, invoice, store))


def _embedded_pdf(ubl: bytes) -> bytes:
    (attachment,) = einvoice.read_ubl(ubl).attachments
    assert (attachment.mime_code, attachment.filename) == ("application/pdf",
                                                           f"{attachment.id}.pdf")
    return attachment.content


@needs_rules
def test_peppol_customer_who_wants_the_pdf_gets_it_inside_the_ubl(herald, tmp_path):
    _wants_pdf_in_ubl(herald, "Acme BV", [ChannelName.PEPPOL])
    created = herald.test_cli_runner().invoke(args=[
        "runs", "create", "--rate", "6000", "--window", "0-24", "--weekends", "--start",
        "--segment", "business"])
    assert created.exit_code == 0, created.output
    _dispatch(herald)
    (envelope,) = [json.loads(p.read_text()) for p in (tmp_path / "outbox").glob("*.json")]
    sent = (tmp_path / "outbox" / envelope["document"]).read_bytes()

    ubl, pdf, as_sent = _stored(herald, "INV-2")
    assert sent == as_sent
    assert _embedded_pdf(sent) == pdf
    # no cycle: the stored UBL stays canonical, and it is what the PDF carries
    assert einvoice.read_ubl(ubl).attachments == []
    assert PdfReader(BytesIO(pdf)).attachments == {"INV-2.xml": [ubl]}
    findings = einvoice.validate(sent, RULES_DIR)
    assert findings.fatal == [] and findings.ran == ["xsd", "cen", "peppol"]


@needs_rules
def test_email_ubl_attachment_carries_the_pdf_when_wanted(herald, smtp_peer):
    _wants_pdf_in_ubl(herald, "Anna Peeters", [ChannelName.EMAIL], ["ubl"])
    herald.test_cli_runner().invoke(args=[
        "runs", "create", "--rate", "6000", "--window", "0-24", "--weekends", "--start"])
    _dispatch(herald)
    mails = {m.rcpt_tos[0]: m.parsed() for m in smtp_peer.messages}
    files = {part.get_filename(): part.get_content()
             for part in mails["c1@example.com"].iter_attachments()}
    assert set(files) == {"INV-1.xml"}
    _, pdf, as_sent = _stored(herald, "INV-1")
    xml = files["INV-1.xml"]
    xml = xml if isinstance(xml, bytes) else xml.encode()
    assert xml == as_sent and _embedded_pdf(xml) == pdf
    cen = [f for f in einvoice.validate(xml, RULES_DIR).fatal if f.source in ("xsd", "cen")]
    assert cen == []
    # Acme did not ask: its UBL is attached as stored
    acme_files = {part.get_filename(): part.get_content()
                  for part in mails["c2@example.com"].iter_attachments()}
    assert "INV-2.xml" not in acme_files or b"EmbeddedDocumentBinaryObject" not in (
        acme_files["INV-2.xml"] if isinstance(acme_files["INV-2.xml"], bytes)
        else acme_files["INV-2.xml"].encode())


def test_ubl_as_sent_waits_for_the_pdf(session, org):
    invoice = _import(session, status="draft")
    invoice.customer.embed_pdf_in_ubl = True
    store = DatabaseStore()
    assert ubl_as_sent(session, invoice, store) is None  # not issued
    issue_invoice(session, invoice, store=store, rules_dir=None, actor="t", official_rules=False)
    assert ubl_as_sent(session, invoice, store) is None  # issued, PDF not rendered yet
    invoice.customer.embed_pdf_in_ubl = False
    assert ubl_as_sent(session, invoice, store) == store.get(session, invoice.ubl_sha256)
