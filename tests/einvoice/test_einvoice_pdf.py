"""PDF rendering: localised content, EPC QR payload, PDF/A-3b with the UBL, pagination."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date
from decimal import Decimal
from io import BytesIO

import pytest

from einvoice import (
    AllowanceCharge,
    Branding,
    DocumentKind,
    PaymentMeans,
    VatExemption,
    compute,
    render_pdf,
    write_ubl,
)
from einvoice.creditor_reference import creditor_reference, format_creditor_reference
from einvoice.pdf import epc_payload_for, epc_qr_payload, render_html
from einvoice.pdf.labels import LABELS, STATUSES, UNITS, VAT_CATEGORIES, unit_name

RF = creditor_reference("INV20240001")
REVIEW_URL = "https://portal.herald.example/i/7Hq2xK"
BRANDING = Branding(seller_name="Herald Demo", primary_colour="#1f3a5f", accent_colour="#0b7a75")

needs_pdftotext = pytest.mark.skipif(
    shutil.which("pdftotext") is None,
    reason="pdftotext not installed (apt-get install poppler-utils)",
)

# Amounts of the invoice below as each language prints them: net 1234.56,
# VAT 210.00, total 1444.56. Babel writes a no-break space; the tests read
# text with plain spaces (see pdf_text).
EXPECTED = {
    "en": {
        "net": "€1,234.56",
        "vat": "€210.00",
        "total": "€1,444.56",
        "discount": "-€20.00",
        "title": "Invoice",
        "date": "1 March 2024",
        "unit": "2 pcs",
        "rate": "21%",
    },
    "nl": {
        "net": "€ 1.234,56",
        "vat": "€ 210,00",
        "total": "€ 1.444,56",
        "discount": "€ -20,00",
        "title": "Factuur",
        "date": "1 maart 2024",
        "unit": "2 st.",
        "rate": "21%",
    },
    "es": {
        "net": "1.234,56 €",
        "vat": "210,00 €",
        "total": "1.444,56 €",
        "discount": "-20,00 €",
        "title": "Factura",
        "date": "1 de marzo de 2024",
        "unit": "2 uds.",
        "rate": "21 %",
    },
}


def pdf_text(pdf: bytes, tmp_path, *pages: int, layout: bool = True) -> str:
    """``pdftotext -layout`` of the PDF (or of one page), with plain spaces.

    Without layout, text comes in reading order with whitespace collapsed, so
    that a title wrapped over two lines still reads as one phrase.
    """
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    args = ["pdftotext", "-enc", "UTF-8", *(["-layout"] if layout else [])]
    if pages:
        args += ["-f", str(pages[0]), "-l", str(pages[0])]
    out = subprocess.run([*args, str(path), "-"], capture_output=True, check=True).stdout
    text = out.decode().replace("\xa0", " ").replace("\u202f", " ")
    return text if layout else " ".join(text.split())


def page_count(pdf: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(BytesIO(pdf)).pages)


@pytest.fixture
def invoice(make_document, make_line):
    """A computed invoice with three VAT categories (S 21 %, Z, E) and a line discount."""
    return compute(
        make_document(
            lines=[
                make_line(
                    1,
                    quantity=Decimal("10"),
                    net_price=Decimal("100.00"),
                    item_name="Architecture review",
                ),
                make_line(
                    2,
                    quantity=Decimal("2"),
                    unit_code="C62",
                    net_price=Decimal("60.00"),
                    item_name="Printed manuals",
                    vat_category="Z",
                    vat_rate=Decimal("0"),
                    allowances_charges=[
                        AllowanceCharge(
                            is_charge=False,
                            amount=Decimal("20.00"),
                            reason="Loyalty",
                            reason_code="95",
                        )
                    ],
                ),
                make_line(
                    3,
                    quantity=Decimal("1"),
                    unit_code="DAY",
                    net_price=Decimal("134.56"),
                    item_name="Training day",
                    vat_category="E",
                    vat_rate=Decimal("0"),
                ),
            ],
            vat_exemptions={"E": VatExemption(reason="Exempt education", code="VATEX-EU-132-1I")},
            payment_means=[
                PaymentMeans(code="30", iban="BE71096123456769", bic="GKCCBEBB", payment_id=RF)
            ],
            order_reference="SO-5521",
            notes=["Thank you for your business."],
        )
    )


@pytest.fixture
def credit_note(invoice):
    """The invoice above, credited in full."""
    from dataclasses import replace

    return replace(
        invoice,
        kind=DocumentKind.CREDIT_NOTE,
        type_code="381",
        number="CN-2024-0007",
        preceding_invoices=[("INV-2024-0001", date(2024, 3, 1))],
    )


def test_totals_of_the_fixture_are_what_the_expectations_assume(invoice):
    assert invoice.totals.tax_exclusive == Decimal("1234.56")
    assert invoice.totals.tax_total == Decimal("210.00")
    assert invoice.totals.payable == Decimal("1444.56")
    assert len(invoice.vat_breakdown) == 3


@needs_pdftotext
@pytest.mark.parametrize("language", ["en", "nl", "es"])
def test_invoice_text_is_localised(invoice, language, tmp_path):
    pdf = render_pdf(invoice, BRANDING, language, review_url=REVIEW_URL, status="overdue")
    text = pdf_text(pdf, tmp_path)
    expected = EXPECTED[language]
    for key in ("net", "vat", "total", "discount", "title", "date", "unit", "rate"):
        assert expected[key] in text, f"{key} {expected[key]!r} missing from {language} PDF"
    assert "INV-2024-0001" in text
    assert format_creditor_reference(RF) in text
    assert REVIEW_URL in text
    assert LABELS[language]["review_and_pay"] in text
    assert STATUSES[language]["overdue"].upper() in text
    assert VAT_CATEGORIES[language]["E"] in text and "Exempt education" in text
    assert "BE71 0961 2345 6769" in text
    assert "SO-5521" in text and "PO-77" in text
    assert "Thank you for your business." in text
    assert page_count(pdf) == 1


@needs_pdftotext
@pytest.mark.parametrize("language", ["en", "nl", "es"])
def test_credit_note_text(credit_note, language, tmp_path):
    pdf = render_pdf(credit_note, BRANDING, language, review_url=REVIEW_URL)
    text = pdf_text(pdf, tmp_path)
    words = LABELS[language]
    assert words["credit_note"] in pdf_text(pdf, tmp_path, layout=False)
    assert "CN-2024-0007" in text
    assert "INV-2024-0001" in text and words["preceding_invoice"] in text
    assert EXPECTED[language]["total"] in text
    assert words["amount_credited"] in text
    assert words["scan_to_pay"] not in text  # nobody pays a credit note
    assert REVIEW_URL in text


def test_credit_note_and_foreign_currency_get_no_qr(invoice, credit_note):
    from dataclasses import replace

    assert epc_payload_for(invoice) is not None
    assert epc_payload_for(credit_note) is None
    assert epc_payload_for(replace(invoice, currency="USD")) is None
    assert epc_payload_for(replace(invoice, payment_means=[PaymentMeans(code="30")])) is None
    paid = replace(
        invoice, totals=replace(invoice.totals, prepaid=Decimal("1444.56"), payable=Decimal("0.00"))
    )
    assert epc_payload_for(paid) is None
    assert 'class="qr-code"' in render_html(invoice, BRANDING)
    assert 'class="qr-code"' not in render_html(invoice, BRANDING, status="paid")
    assert 'class="qr-code"' not in render_html(credit_note, BRANDING)


def test_epc_payload_lines_are_exact():
    payload = epc_qr_payload(
        name="Herald Demo BV",
        iban="BE71 0961 2345 6769",
        bic="gkccbebb",
        amount=Decimal("1444.56"),
        reference="RF18 5390 0754 7034",
    )
    assert payload == (
        "BCD\n002\n1\nSCT\nGKCCBEBB\nHerald Demo BV\nBE71096123456769\nEUR1444.56\n\n"
        "RF18539007547034"
    )


def test_epc_payload_with_text_and_without_bic():
    payload = epc_qr_payload(
        name="A" * 80, iban="NL91ABNA0417164300", amount=Decimal("5"), text="+++090/9337/55493+++"
    )
    assert payload.split("\n") == [
        "BCD",
        "002",
        "1",
        "SCT",
        "",
        "A" * 70,
        "NL91ABNA0417164300",
        "EUR5.00",
        "",
        "",
        "+++090/9337/55493+++",
    ]


def test_epc_payload_of_the_invoice(invoice):
    lines = epc_payload_for(invoice).split("\n")
    assert lines[:4] == ["BCD", "002", "1", "SCT"]
    assert lines[4:8] == ["GKCCBEBB", "Herald Demo BV", "BE71096123456769", "EUR1444.56"]
    assert lines[9] == RF
    assert len(lines) == 10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"amount": Decimal("0")},
        {"amount": Decimal("1000000000.00")},
        {"amount": Decimal("1.234")},
        {"reference": "RF00 1234"},
        {"reference": RF, "text": "both"},
    ],
)
def test_epc_payload_refuses_bad_input(kwargs):
    values = {"name": "X", "iban": "BE71096123456769", "amount": Decimal("1.00"), **kwargs}
    with pytest.raises(ValueError):
        epc_qr_payload(**values)


def test_pdfa3b_carries_the_ubl(invoice):
    from pypdf import PdfReader

    ubl = write_ubl(invoice)
    pdf = render_pdf(invoice, BRANDING, "nl", attach_ubl=ubl)
    reader = PdfReader(BytesIO(pdf))
    assert reader.attachments == {"INV-2024-0001.xml": [ubl]}
    root = reader.trailer["/Root"]
    xmp = root["/Metadata"].get_object().get_data().decode()
    assert re.search(r"pdfaid:part(>|=\")3\b", xmp), xmp
    assert re.search(r"pdfaid:conformance(>|=\")B\b", xmp), xmp
    (filespec,) = [ref.get_object() for ref in root["/AF"]]  # listed once
    assert filespec["/AFRelationship"] == "/Alternative"
    assert filespec["/EF"]["/F"].get_object()["/Subtype"] == "/application/xml"
    assert "/OutputIntents" in root


def test_plain_pdf_has_no_attachment(invoice):
    from pypdf import PdfReader

    reader = PdfReader(BytesIO(render_pdf(invoice, BRANDING)))
    assert reader.attachments == {}
    assert "/AF" not in reader.trailer["/Root"]


@needs_pdftotext
def test_long_invoice_paginates_with_repeated_header(make_document, make_line, tmp_path):
    doc = compute(make_document(lines=[make_line(n) for n in range(1, 501)]))
    pdf = render_pdf(doc, BRANDING, "en")
    pages = page_count(pdf)
    assert pages > 1
    for page in range(1, pages + 1):
        text = pdf_text(pdf, tmp_path, page)
        if "Consulting" in text:  # every page holding lines starts with their header
            assert re.search(r"Description\s+Quantity × price\s+VAT\s+Amount", text), page
        assert f"Page {page} of {pages}" in text
    assert "Consulting 500" in pdf_text(pdf, tmp_path, pages) or "Consulting 500" in pdf_text(
        pdf, tmp_path, pages - 1
    )


def test_logo_is_embedded_and_colours_are_checked(invoice):
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
        b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
        b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    branding = Branding(
        seller_name="Logo Co", logo=png, logo_mime_type="image/png", primary_colour="#abc"
    )
    html = render_html(invoice, branding)
    assert "data:image/png;base64," in html and "--primary: #abc" in html
    assert render_pdf(invoice, branding).startswith(b"%PDF-")
    with pytest.raises(ValueError):
        Branding(seller_name="x", primary_colour="red;}")
    with pytest.raises(ValueError):
        Branding(seller_name="x", logo=png, logo_mime_type="text/html")


def test_text_is_escaped(invoice):
    from dataclasses import replace

    html = render_html(replace(invoice, notes=["<script>alert(1)</script>"]), BRANDING)
    assert "<script>" not in html and "&lt;script&gt;" in html


@needs_pdftotext
def test_a_notice_is_printed_above_the_payment_block(invoice, tmp_path):
    notice = "A reminder fee of €7.50 applies. <b>Pay now</b>"
    html = render_html(invoice, BRANDING, notice=notice)
    assert '<div class="notice">' in html and "&lt;b&gt;" in html
    assert html.index('class="notice"') < html.index('class="payment"')
    assert 'class="notice"' not in render_html(invoice, BRANDING)
    text = pdf_text(render_pdf(invoice, BRANDING, notice=notice), tmp_path, layout=False)
    assert "A reminder fee of €7.50 applies." in text
    assert text.index("reminder fee") < text.index(LABELS["en"]["payment"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"language": "fr"}, "not supported"),
        ({"review_url": "javascript:alert(1)"}, "http"),
        ({"review_url": "/relative"}, "http"),
    ],
)
def test_bad_arguments_are_refused(invoice, kwargs, message):
    with pytest.raises(ValueError, match=message):
        render_pdf(invoice, BRANDING, **kwargs)


def test_uncomputed_document_is_computed_not_changed(make_document):
    doc = make_document()
    assert doc.totals is None
    assert render_pdf(doc, BRANDING).startswith(b"%PDF-")
    assert doc.totals is None


def test_every_language_has_every_word():
    for table in (LABELS, VAT_CATEGORIES, STATUSES):
        keys = {language: set(words) for language, words in table.items()}
        assert all(k == keys["en"] for k in keys.values()), table
    for code, forms in UNITS.items():
        assert set(forms) == set(LABELS), code


def test_unit_names():
    assert unit_name("C62", "en", plural=True) == "pcs"
    assert unit_name("C62", "nl", plural=False) == "st."
    assert unit_name("C62", "es", plural=True) == "uds."
    assert unit_name("HUR", "nl", plural=True) == "uur"
    assert unit_name("E34", "es", plural=True) == "GB"
    assert unit_name("XYZ", "en", plural=True) == "XYZ"


# --- How the PDF is rendered quickly: XHTML read by expat, a small UA stylesheet, QR as PNG ---


def test_the_template_is_well_formed_xhtml_whatever_the_content(invoice, credit_note):
    from dataclasses import replace
    from xml.etree import ElementTree

    awkward = replace(invoice, notes=['Fish & chips <"quoted"> \'single\' ]]> &amp;'])
    awkward.buyer.name = "A & B <Holding>"
    for doc, status in ((awkward, None), (credit_note, "paid"), (invoice, "overdue")):
        for language in ("en", "nl", "es"):
            html = render_html(doc, BRANDING, language, review_url=REVIEW_URL, status=status,
                               notice="Fee & <costs>")
            ElementTree.fromstring(html)  # the fast path: no fallback to the HTML5 parser


@needs_pdftotext
def test_lays_out_as_weasyprint_does_with_its_own_parser_and_stylesheet(invoice, tmp_path):
    import weasyprint

    from einvoice.pdf.render import _engine, _page_class

    fonts, stylesheet, fetcher = _engine()
    html = render_html(invoice, BRANDING, "nl", review_url=REVIEW_URL)
    ours = render_pdf(invoice, BRANDING, "nl", review_url=REVIEW_URL)
    stock = weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf(
        stylesheets=[stylesheet], font_config=fonts)
    assert pdf_text(ours, tmp_path) == pdf_text(stock, tmp_path)
    # HTML that is not XHTML still renders, through WeasyPrint's HTML5 parser
    page = _page_class()(html.replace("<br/>", "<br>"), fetcher)
    fallback = page.write_pdf(stylesheets=[stylesheet], font_config=fonts)
    assert pdf_text(fallback, tmp_path) == pdf_text(stock, tmp_path)


def epc_modules(payload: str) -> list[list[bool]]:
    """The dark modules of the EPC QR code of ``payload``, as Herald makes it."""
    import segno

    matrix = segno.make(payload, error="m", micro=False, encoding="utf-8",
                        boost_error=False).matrix
    return [[bool(bit) for bit in row] for row in matrix]


def qr_modules_in(pdf: bytes) -> list[list[bool]]:
    """The dark pixels of the first page's QR image (one pixel a module); the logo and
    the row-rule tile are narrower than any QR code."""
    from pypdf import PdfReader

    (image,) = [i for i in PdfReader(BytesIO(pdf)).pages[0].images
                if 10 < i.image.size[0] < 100]
    pixels = image.image.convert("L")
    return [[pixels.getpixel((x, y)) < 128 for x in range(pixels.size[0])]
            for y in range(pixels.size[1])]


def test_the_qr_image_in_the_pdf_is_the_epc_code(invoice):
    pdf = render_pdf(invoice, BRANDING, "nl")
    assert qr_modules_in(pdf) == epc_modules(epc_payload_for(invoice))
