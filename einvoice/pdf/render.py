"""Render a document to PDF (or PDF/A-3b with its UBL attached) with WeasyPrint.

WeasyPrint is imported on the first render, not with :mod:`einvoice`: it takes
about a second to import and needs Pango, which processes that only write or
validate UBL should not pay for.
"""

from __future__ import annotations

import base64
import functools
import gc
import re
import threading
from decimal import Decimal
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from xml.etree import ElementTree

import jinja2

from einvoice.creditor_reference import is_valid_creditor_reference
from einvoice.model import Document, DocumentKind
from einvoice.pdf.branding import Branding
from einvoice.pdf.epc import epc_qr_payload, epc_qr_png
from einvoice.pdf.view import beneficiary, build_context, payment_means, resolve_language

if TYPE_CHECKING:
    import weasyprint

__all__ = ["ATTACHMENT_RELATIONSHIP", "epc_payload_for", "print_html", "render_html",
           "render_pdf"]

#: PDF/A-3 relationship of the embedded UBL to the PDF: the same invoice in
#: another form, as Factur-X/ZUGFeRD declare their XML.
ATTACHMENT_RELATIONSHIP = "Alternative"

_TEMPLATES = resources.files("einvoice.pdf") / "templates"
_lock = threading.Lock()
# Entries (images and their encoded data) the shared image cache may hold before it is
# emptied: a document adds three or four (its QR code), so this is about 60 documents.
IMAGE_CACHE_ENTRIES = 256
_images: dict = {}


@functools.cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined
    )
    return environment.from_string((_TEMPLATES / "invoice.html").read_text("utf-8"))


@functools.cache
def _engine() -> tuple[weasyprint.text.fonts.FontConfiguration, weasyprint.CSS, object]:
    """The process-wide font configuration, parsed stylesheet and URL fetcher.

    One FontConfiguration per process is measured to be faster and to stop
    memory growing per render; the stylesheet is parsed once against it.
    The fetcher only allows ``data:`` URLs: the template embeds everything,
    so nothing in a document can make the renderer read a file or the network.
    """
    import weasyprint
    from weasyprint.text.fonts import FontConfiguration

    fonts = FontConfiguration()
    fetcher = weasyprint.URLFetcher(allowed_protocols={"data"})
    stylesheet = weasyprint.CSS(
        string=(_TEMPLATES / "invoice.css").read_text("utf-8"),
        font_config=fonts,
        url_fetcher=fetcher,
    )
    return fonts, stylesheet, fetcher


@functools.lru_cache(maxsize=256)
def _document_stylesheet(text: str) -> weasyprint.CSS:
    """The stylesheet of a document's own ``<style>``, parsed once per distinct text.

    It holds only the seller's colours and the page counter's words, so a process
    sees one per seller and language; parsed once, its declarations are the same
    objects in every document, which lets computed styles be shared between documents.
    """
    import weasyprint

    fonts, _, fetcher = _engine()
    return weasyprint.CSS(string=text, font_config=fonts, url_fetcher=fetcher)


@functools.cache
def _page_class() -> type[weasyprint.HTML]:
    """WeasyPrint's HTML document, with the small user-agent stylesheet of our template.

    Built on first use (WeasyPrint is imported lazily). Overriding
    ``_ua_stylesheets`` is how WeasyPrint's own subclasses choose theirs; the
    test suite renders through it, so a WeasyPrint upgrade that changes the
    hook shows there.
    """
    import cssselect2
    import weasyprint

    from einvoice.pdf import shared_styles

    shared_styles.install()
    user_agent = weasyprint.CSS(string=(_TEMPLATES / "ua.css").read_text("utf-8"))

    class InvoicePage(weasyprint.HTML):
        shares_styles = False

        def __init__(self, html: str, url_fetcher: object) -> None:
            self.own_stylesheets = []
            try:
                # Our template's own output, every value escaped by Jinja: no entity
                # declarations can get in (and expat refuses entity bombs anyway).
                root = ElementTree.fromstring(html)  # noqa: S314
            except ElementTree.ParseError:  # not XHTML after all: WeasyPrint's HTML parser
                super().__init__(string=html, url_fetcher=url_fetcher)
                return
            # The template is well-formed XHTML, so the C XML parser reads it in a
            # fraction of the time WeasyPrint's pure-Python HTML5 parser needs (6% of
            # a render); the attributes are those HTML.__init__ sets.
            self.base_url = None
            self.url_fetcher = url_fetcher
            self.media_type = "print"
            head = root.find("head")
            for style in [] if head is None else head.findall("style"):
                head.remove(style)
                self.own_stylesheets.append(_document_stylesheet(style.text or ""))
            self.shares_styles = True
            self.wrapper_element = cssselect2.ElementWrapper.from_html_root(root)
            self.etree_element = self.wrapper_element.etree_element

        def _ua_stylesheets(self, forms: bool = False) -> list[weasyprint.CSS]:
            return [user_agent]

        def render(self, *args: object, **options: object) -> weasyprint.Document:
            # The document's own <style>, lifted out of the tree and parsed once, comes
            # after the caller's stylesheets: the template's rules never set what the
            # <style> sets, and the later sheet wins where selectors tie anyway.
            options["stylesheets"] = [*(options.get("stylesheets") or []),
                                      *self.own_stylesheets]
            return super().render(*args, **options)

    return InvoicePage


def _image_cache() -> dict:
    """WeasyPrint's image cache, shared by the renders of this process.

    The seller's logo (an SVG is parsed again otherwise) and the stylesheet's
    row-rule tile are the same in every document: shared, they are decoded once,
    about 3% of a render. Each document adds its own QR code, so the cache is
    emptied when it grows past :data:`IMAGE_CACHE_ENTRIES`; only between renders
    (the caller holds ``_lock``), because an image and its encoded data are
    separate entries that must go together.
    """
    if len(_images) > IMAGE_CACHE_ENTRIES:
        _images.clear()
    return _images


def epc_payload_for(doc: Document) -> str | None:
    """The EPC QR payload for a computed invoice, or None when no QR belongs on it.

    A QR is printed for an invoice in EUR with an amount due above zero and an
    IBAN in its first payment means; an RF reference goes in the structured
    remittance field, any other payment id in the text field.
    """
    means = payment_means(doc)
    totals = doc.totals
    if (
        doc.kind is not DocumentKind.INVOICE
        or doc.currency != "EUR"
        or totals is None
        or totals.payable <= 0
        or means is None
        or not means.iban
    ):
        return None
    # Without a structured reference the invoice number is the best text for
    # the seller to match the payment on.
    reference, text = None, means.payment_id or doc.number
    if means.payment_id and is_valid_creditor_reference(means.payment_id):
        reference, text = means.payment_id, None
    return epc_qr_payload(
        name=beneficiary(doc, means),
        iban=means.iban,
        amount=totals.payable.quantize(Decimal("0.01")),
        bic=means.bic,
        reference=reference,
        text=text,
    )


def _check_review_url(url: str | None) -> None:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"review_url must be an absolute http(s) URL, not {url!r}")


def _computed(doc: Document) -> Document:
    if (
        doc.totals is None
        or not doc.vat_breakdown
        or any(line.net_amount is None for line in doc.lines)
    ):
        from einvoice.calc import compute

        return compute(doc)
    return doc


def render_html(
    doc: Document,
    branding: Branding,
    language: str = "en",
    *,
    review_url: str | None = None,
    status: str | None = None,
    notice: str | None = None,
) -> str:
    """The HTML that :func:`render_pdf` lays out (useful to inspect or preview)."""
    resolve_language(language)
    _check_review_url(review_url)
    doc = _computed(doc)
    context = build_context(doc, language, status=status, review_url=review_url)
    # A paid invoice keeps its payment details for the record, but no code
    # that invites paying it twice.
    paid = context["status"] is not None and context["status"]["key"] == "paid"
    payload = None if paid else epc_payload_for(doc)
    context["qr_png"] = epc_qr_png(payload) if payload else None
    context["branding"] = branding
    context["notice"] = notice or None
    context["logo_uri"] = (
        f"data:{branding.logo_mime_type};base64,{base64.b64encode(branding.logo).decode()}"
        if branding.logo
        else None
    )
    return _template().render(**context)


def _attachment_name(number: str) -> str:
    # Invoice numbers may hold "/" or spaces; keep the file name portable.
    return re.sub(r"[^0-9A-Za-z._-]+", "_", number).strip("_") + ".xml"


def _one_associated_file_entry(document: object, pdf: object) -> None:
    """PDF finisher: WeasyPrint 70 lists the attachment twice in the catalog's /AF.

    It adds the file specification once from the EmbeddedFiles name tree and
    once from the object list; validators expect each associated file once.
    """
    associated = pdf.catalog.get("AF")  # type: ignore[attr-defined]
    if associated:
        unique = list(dict.fromkeys(associated))
        associated.clear()
        associated.extend(unique)


def render_pdf(
    doc: Document,
    branding: Branding,
    language: str = "en",
    *,
    review_url: str | None = None,
    status: str | None = None,
    notice: str | None = None,
    attach_ubl: bytes | None = None,
) -> bytes:
    """Render an invoice or credit note to PDF bytes.

    ``doc`` is computed first when its totals or VAT breakdown are missing
    (the document itself is not changed). ``language`` is ``"en"``, ``"nl"``
    or ``"es"``, optionally with a region (``"nl-BE"``) for Babel's formats.
    ``review_url`` (absolute http/https) is printed as a "review and pay"
    link; ``status`` (e.g. ``"paid"``, ``"overdue"``) as a badge; ``notice``
    (plain text, already in ``language``, e.g. a reminder fee) as a
    highlighted box above the payment block. With
    ``attach_ubl`` the result is PDF/A-3b with those bytes embedded as
    ``<number>.xml`` (``application/xml``, relationship Alternative).
    Raises ValueError for an unsupported language or an unsafe review URL.
    """
    import weasyprint

    html = render_html(doc, branding, language, review_url=review_url, status=status,
                       notice=notice)
    fetcher = _engine()[2]
    options: dict = {}
    if attach_ubl is not None:
        options["finisher"] = _one_associated_file_entry
        data_url = "data:application/xml;base64," + base64.b64encode(attach_ubl).decode()
        options["pdf_variant"] = "pdf/a-3b"
        options["attachments"] = [
            weasyprint.Attachment(
                url=data_url,
                url_fetcher=fetcher,
                name=_attachment_name(doc.number),
                description=f"UBL 2.1 {doc.kind.value.replace('_', ' ')} {doc.number}",
                relationship=ATTACHMENT_RELATIONSHIP,
            )
        ]
    return _write_pdf(html, options)


def print_html(html: str) -> bytes:
    """Lay out HTML from :func:`render_html` as a plain PDF, as :func:`render_pdf` does.

    The printing half of :func:`render_pdf`, for comparing engines on the same
    HTML (``bench/pdf_vs_chromium.py``) or printing a previewed page as it is.
    """
    return _write_pdf(html, {})


def _write_pdf(html: str, options: dict) -> bytes:
    from einvoice.pdf import shared_styles

    fonts, stylesheet, fetcher = _engine()
    page = _page_class()(html, fetcher)
    # WeasyPrint does not promise that a FontConfiguration is safe to share
    # between threads; rendering is CPU-bound anyway, so threads would gain
    # nothing from running it concurrently.
    with _lock:
        shared_styles.trim_cache()
        # A render allocates hundreds of thousands of short-lived objects, about
        # 5,000 of them in reference cycles. With the cyclic collector on, that
        # triggers some ten young and now and then a full collection per render,
        # each walking the long-lived WeasyPrint, font and Babel objects: about
        # 12 ms of a render, measured. Off during the render, one young-generation
        # collection afterwards frees the same cycles in about 4 ms.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return page.write_pdf(stylesheets=[stylesheet], font_config=fonts,
                                  cache=_image_cache(), **options)
        finally:
            if collecting:
                gc.enable()
                gc.collect(0)
