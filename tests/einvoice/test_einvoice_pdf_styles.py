"""Computed styles shared between renders: the same pages as WeasyPrint alone, less work."""

from __future__ import annotations

import subprocess
from decimal import Decimal

import pytest

from einvoice import Branding, DocumentKind, compute
from einvoice.pdf import print_html, render_html
from tests.einvoice.test_einvoice_pdf import needs_pdftotext

URL = "https://pay.example/i/abc"
PLAIN = Branding(seller_name="Plain Co")
RED = Branding(seller_name="Red Co", primary_colour="#b00000", accent_colour="#ff7700",
               footer_text="Red Co & partners")


def page_images(pdf: bytes, tmp_path, name: str) -> list[bytes]:
    """Every page of the PDF as a PNG at 60 dpi (poppler's pdftoppm)."""
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(path), str(tmp_path / name)],
                   check=True)
    return [page.read_bytes() for page in sorted(tmp_path.glob(f"{name}-*.png"))]


def stock_pdf(html: str) -> bytes:
    """The HTML printed by WeasyPrint alone: its own parser, user-agent stylesheet and
    cascade, the document's <style> read from the document, no style shared."""
    import weasyprint

    from einvoice.pdf.render import _engine

    fonts, stylesheet, fetcher = _engine()
    return weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf(
        stylesheets=[stylesheet], font_config=fonts)


@pytest.fixture
def documents(make_document, make_line):
    """Invoices and a credit note of different shapes, for two sellers and languages."""
    def lines(count: int, price: str = "40.00"):
        return [make_line(n, net_price=Decimal(price) + n, item_name=f"Item {n}")
                for n in range(1, count + 1)]

    return [
        compute(make_document(number="INV-S-1", lines=lines(3))),
        compute(make_document(number="INV-S-2", lines=lines(12, "7.25"))),
        compute(make_document(number="CN-S-1", kind=DocumentKind.CREDIT_NOTE,
                              lines=lines(2))),
        compute(make_document(number="INV-S-3", lines=lines(45))),  # two pages
    ]


@needs_pdftotext
def test_shared_styles_print_the_pages_weasyprint_prints_alone(documents, tmp_path):
    """Each page is the same image as WeasyPrint's own rendering of the same HTML, with
    sellers, languages and statuses interleaved so that styles computed for one
    document are offered to the next."""
    jobs = [
        (documents[0], PLAIN, "en", None, None),
        (documents[1], RED, "nl", "overdue", "Herinneringskost € 5"),
        (documents[2], PLAIN, "es", None, None),
        (documents[0], RED, "nl", "paid", None),
        (documents[3], PLAIN, "en", None, "Reminder fee"),
        (documents[1], PLAIN, "en", "overdue", None),
    ]
    pages = []
    for n, (doc, branding, language, status, notice) in enumerate(jobs):
        html = render_html(doc, branding, language, review_url=URL, status=status,
                           notice=notice)
        ours = page_images(print_html(html), tmp_path, f"ours{n}")
        alone = page_images(stock_pdf(html), tmp_path, f"alone{n}")
        assert len(ours) == len(alone) >= 1
        assert ours == alone, f"job {n} ({doc.number}, {language}) differs from WeasyPrint"
        pages.append(len(ours))
    assert max(pages) == 2  # the 45-line invoice: a page break with styles shared


def test_a_second_invoice_of_a_seller_reuses_every_style(documents, monkeypatch):
    from einvoice.pdf import shared_styles

    monkeypatch.setattr(shared_styles, "_styles", {})
    print_html(render_html(documents[0], PLAIN, "nl", review_url=URL))
    first = len(shared_styles._styles)
    assert first > 20  # the template's elements, a style each kind
    print_html(render_html(documents[1], PLAIN, "nl", review_url=URL))
    assert len(shared_styles._styles) == first  # other number, lines, amounts: nothing new
    # Another seller's colours are other declarations: that seller's styles are its own.
    print_html(render_html(documents[1], RED, "nl", review_url=URL))
    assert len(shared_styles._styles) > first


def test_other_weasyprint_documents_compute_their_own_styles(documents, monkeypatch):
    from einvoice.pdf import shared_styles

    print_html(render_html(documents[0], PLAIN, "en"))  # installs the sharing StyleFor
    monkeypatch.setattr(shared_styles, "_styles", {})
    stock_pdf(render_html(documents[0], PLAIN, "en"))
    assert shared_styles._styles == {}


@needs_pdftotext
def test_the_cache_is_emptied_between_renders_once_past_its_limit(documents, tmp_path,
                                                                  monkeypatch):
    from einvoice.pdf import shared_styles

    monkeypatch.setattr(shared_styles, "_styles", {})
    monkeypatch.setattr(shared_styles, "STYLE_CACHE_ENTRIES", 10)
    html = render_html(documents[0], RED, "es", review_url=URL)
    first = print_html(html)
    assert len(shared_styles._styles) > 10
    before = list(shared_styles._styles.values())
    again = print_html(html)  # emptied before this render, filled again by it
    assert len(shared_styles._styles) > 10
    assert not any(style is old for style in shared_styles._styles.values() for old in before)
    assert page_images(again, tmp_path, "again") == page_images(first, tmp_path, "first")
