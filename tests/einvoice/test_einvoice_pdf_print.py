"""print_html: the printing half of render_pdf, and what rendering leaves behind."""

from __future__ import annotations

import gc

import pytest

from einvoice import Branding, compute, render_pdf
from einvoice.pdf import print_html, render_html
from tests.einvoice.test_einvoice_pdf import (
    epc_modules,
    needs_pdftotext,
    pdf_text,
    qr_modules_in,
)

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


def test_renders_share_the_logo_and_each_keeps_its_own_qr_code(make_document, make_line,
                                                               monkeypatch):
    """The image cache shared between renders: the logo is fetched once while the cache
    lasts, every PDF carries the QR code of its own amount, and the cache is emptied
    (between renders) once it outgrows its limit, so a long-running worker stays bounded."""
    import base64
    from decimal import Decimal

    import weasyprint.images

    from einvoice.pdf import render
    from einvoice.pdf.render import epc_payload_for

    logo = (  # a 1x1 PNG: a raster logo, whose encoded data the cache holds apart
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
        b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
        b"\x00\x00\x00\x00IEND\xaeB`\x82")
    branding = Branding(seller_name="Cache Co", logo=logo, logo_mime_type="image/png")
    fetched: list[str] = []
    real_fetch = weasyprint.images.fetch

    def counting_fetch(fetcher, url):
        fetched.append(url)
        return real_fetch(fetcher, url)

    monkeypatch.setattr(weasyprint.images, "fetch", counting_fetch)
    monkeypatch.setattr(render, "IMAGE_CACHE_ENTRIES", 12)
    monkeypatch.setattr(render, "_images", {})
    sizes = []
    for n in range(1, 9):
        doc = compute(make_document(number=f"INV-CACHE-{n}",
                                    lines=[make_line(1, net_price=Decimal(100 + n))]))
        pdf = render_pdf(doc, branding, "en")
        assert qr_modules_in(pdf) == epc_modules(epc_payload_for(doc))
        sizes.append(len(render._images))
    logo_url = "data:image/png;base64," + base64.b64encode(logo).decode()
    logo_fetches = [url for url in fetched if url == logo_url]
    # Eight documents, a cache emptied at least once: the logo fetched again only then.
    assert 1 < len(logo_fetches) < 8
    assert max(sizes) <= 12 + 8 and min(sizes[1:]) < max(sizes)

