"""The PDF embedded in the UBL (BG-24) for customers who want it, without a cycle."""

from __future__ import annotations

import base64
import copy
from datetime import date
from io import BytesIO

import pytest
from lxml import etree

from einvoice import (
    Attachment,
    Branding,
    Document,
    DocumentKind,
    InvoiceRuleError,
    PaymentMeans,
    check,
    compute,
    embed_attachment,
    embed_pdf,
    pdf_attachment,
    read_ubl,
    render_pdf,
    write_ubl,
)
from einvoice.ubl.namespaces import CAC_NS, CBC_NS
from einvoice.validation import validate
from tests.einvoice.conftest import buyer, line, seller

NS = {"cac": CAC_NS, "cbc": CBC_NS}
BINARY = "cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject"
TINY_PDF = b"%PDF-1.4\n%tiny test document\n"


def _names(data: bytes) -> list[str]:
    return [etree.QName(child).localname for child in etree.fromstring(data)]


@pytest.fixture(scope="module")
def rendered(rules_dir):
    """A computed invoice, its canonical UBL and its PDF/A-3b (which embeds that UBL)."""
    doc = compute(
        Document(
            number="INV-2024-0001",
            issue_date=date(2024, 3, 1),
            due_date=date(2024, 3, 31),
            currency="EUR",
            seller=seller(),
            buyer=buyer(),
            buyer_reference="PO-77",
            lines=[line(1), line(2)],
            payment_means=[PaymentMeans(code="30", iban="BE71096123456769")],
        )
    )
    ubl = write_ubl(doc, rules_dir)
    pdf = render_pdf(doc, Branding(seller_name="Herald Demo"), "en", attach_ubl=ubl)
    return copy.deepcopy(doc), ubl, pdf


def test_the_variant_passes_xsd_cen_and_peppol(rendered, rules_dir):
    _, ubl, pdf = rendered
    variant = embed_pdf(ubl, pdf)
    findings = validate(variant, rules_dir)
    assert findings.ran == ["xsd", "cen", "peppol"]
    assert findings.fatal == [], findings.fatal
    root = etree.fromstring(variant)
    (binary,) = root.xpath(BINARY, namespaces=NS)
    assert binary.get("mimeCode") == "application/pdf"
    assert binary.get("filename") == "INV-2024-0001.pdf"
    assert base64.b64decode(binary.text) == pdf
    assert root.xpath("cac:AdditionalDocumentReference/cbc:ID/text()", namespaces=NS) == [
        "INV-2024-0001"
    ]
    assert root.xpath(
        "cac:AdditionalDocumentReference/cbc:DocumentDescription/text()", namespaces=NS
    ) == ["INV-2024-0001 (PDF)"]
    # in schema order: after the contract reference, before the seller
    names = _names(variant)
    assert names.index("BuyerReference") < names.index("AdditionalDocumentReference")
    assert names.index("AdditionalDocumentReference") < names.index("AccountingSupplierParty")


def test_no_cycle_the_pdf_inside_carries_the_canonical_ubl(rendered):
    from pypdf import PdfReader

    _, ubl, pdf = rendered
    variant = embed_pdf(ubl, pdf)
    (inner_pdf,) = [a.content for a in read_ubl(variant).attachments]
    assert PdfReader(BytesIO(inner_pdf)).attachments == {"INV-2024-0001.xml": [ubl]}
    assert b"EmbeddedDocumentBinaryObject" not in ubl  # the stored UBL stays without the PDF


def test_the_variant_is_the_canonical_document_plus_one_reference(rendered):
    doc, ubl, pdf = rendered
    variant = embed_pdf(ubl, pdf)
    assert embed_pdf(ubl, pdf) == variant  # deterministic: rebuildable from the two hashes
    read = read_ubl(variant)
    assert read.attachments == [pdf_attachment(pdf, "INV-2024-0001")]
    read.attachments = []
    assert read == read_ubl(ubl) == doc
    # writing the same attachment through the model gives the same bytes
    with_pdf = read_ubl(ubl)
    with_pdf.attachments = [pdf_attachment(pdf, "INV-2024-0001")]
    assert write_ubl(with_pdf) == variant


def test_written_through_the_model_and_read_back(make_document, rules_dir):
    doc = compute(make_document(attachments=[pdf_attachment(TINY_PDF, "INV-2024-0001")]))
    written = write_ubl(doc, rules_dir)
    assert validate(written, rules_dir).fatal == []
    assert read_ubl(written).attachments == doc.attachments


def test_credit_note_keeps_schema_order(make_document, rules_dir, xsd):
    doc = compute(
        make_document(
            kind=DocumentKind.CREDIT_NOTE,
            number="CN-1",
            preceding_invoices=[("INV-1", None)],
            project_reference="PRJ-9",
            tender_reference="LOT-3",
        )
    )
    variant = embed_pdf(write_ubl(doc, rules_dir), TINY_PDF)
    assert xsd(variant) == []
    assert validate(variant, rules_dir).fatal == []
    names = _names(variant)
    assert names.count("AdditionalDocumentReference") == 2  # the project (type 50) and the PDF
    assert names.index("OriginatorDocumentReference") > names.index("AdditionalDocumentReference")
    read = read_ubl(variant)
    assert read.project_reference == "PRJ-9"
    assert [a.filename for a in read.attachments] == ["CN-1.pdf"]


def test_official_example_gets_the_pdf_after_its_own_references(examples, rules_dir, xsd):
    for path in examples:
        data = path.read_bytes()
        before = read_ubl(data).attachments
        variant = embed_pdf(data, TINY_PDF, number="herald-copy")
        assert xsd(variant) == [], path.name
        after = read_ubl(variant).attachments
        assert after[: len(before)] == before, path.name
        assert after[-1].filename == "herald-copy.pdf", path.name


def test_refused_attachments():
    ubl_like = b"<Invoice xmlns='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'/>"
    with pytest.raises(InvoiceRuleError) as raised:
        embed_attachment(ubl_like, Attachment(id="x", mime_code="text/html", filename="x.html",
                                              content=b"<p>"))
    assert raised.value.rule == "BR-CL-24"
    with pytest.raises(InvoiceRuleError) as raised:
        embed_attachment(ubl_like, Attachment(id="x", mime_code="application/pdf",
                                              content=TINY_PDF))
    assert raised.value.rule == "UBL-DT-07"
    with pytest.raises(InvoiceRuleError) as raised:
        pdf_attachment(b"<html>", "INV-1")
    assert raised.value.rule == "BR-CL-24"


def test_the_same_file_name_twice_is_refused(rendered):
    _, ubl, pdf = rendered
    with pytest.raises(InvoiceRuleError) as raised:
        embed_pdf(embed_pdf(ubl, pdf), pdf)
    assert raised.value.rule == "DE-R-022"


def test_check_names_missing_file_name_and_duplicates(make_document):
    doc = compute(
        make_document(
            attachments=[
                Attachment(id="a", mime_code="application/pdf", content=TINY_PDF),
                Attachment(id="b", mime_code="application/pdf", filename="X.pdf",
                           content=TINY_PDF),
                Attachment(id="c", mime_code="application/pdf", filename="x.PDF",
                           content=TINY_PDF),
            ]
        )
    )
    rules = [(p.rule, p.field) for p in check(doc)]
    assert ("UBL-DT-07", "attachments[0].filename") in rules
    assert ("DE-R-022", "attachments") in rules
    with pytest.raises(InvoiceRuleError):
        write_ubl(doc)


def test_a_number_with_slashes_gets_a_portable_file_name(rendered, rules_dir):
    _, ubl, pdf = rendered
    variant = embed_pdf(ubl, pdf, number="2026/10 7")
    (attachment,) = read_ubl(variant).attachments
    assert (attachment.id, attachment.filename) == ("2026/10 7", "2026_10_7.pdf")
    assert validate(variant, rules_dir).fatal == []
