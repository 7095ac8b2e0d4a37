"""print_html: the printing half of render_pdf, and what rendering leaves behind."""

from __future__ import annotations

import gc

import pytest

from einvoice import Branding, compute, render_pdf
from einvoice.pdf import print_html, render_html
from tests.einvoice.test_einvoice_pdf import needs_pdftotext, pdf_text

BRANDING = Branding(seller_name="Print Test")
URL = "https://pay.example/i/abc"


@pytest.fixture
def invoice(make_document, make_line):
    return compute(make_document(lines=[make_line(id=str(n)) for n in range(1, 4)]))


@needs_pdftotext
def test_printing_the_html_gives_the_page_render_pdf_gives(invoice, tmp_path):
    html = render_html(invoice, BRANDING, "nl", review_url=URL)
    printed = print_html(html)
    assert printed.startswith(b"%PDF-")
    whole = render_pdf(invoice, BRANDING, "nl", review_url=URL)
    assert pdf_text(printed, tmp_path) == pdf_text(whole, tmp_path)
    assert invoice.number in pdf_text(printed, tmp_path)


def test_rendering_leaves_the_garbage_collector_as_it_found_it(invoice):
    # Rendering switches the cyclic collector off while WeasyPrint runs.
    assert gc.isenabled()
    render_pdf(invoice, BRANDING)
    assert gc.isenabled()
    gc.disable()
    try:
        render_pdf(invoice, BRANDING)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_failed_render_switches_the_collector_back_on(invoice, monkeypatch):
    import weasyprint

    def broken(*args, **kwargs):
        assert not gc.isenabled()
        raise RuntimeError("layout failed")

    monkeypatch.setattr(weasyprint.HTML, "write_pdf", broken)
    with pytest.raises(RuntimeError, match="layout failed"):
        render_pdf(invoice, BRANDING)
    assert gc.isenabled()
