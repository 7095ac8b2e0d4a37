"""PDF rendering of e-invoice documents: Herald's own HTML/CSS template through WeasyPrint.

Typical use::

    from einvoice import Branding, render_pdf, write_ubl
    pdf = render_pdf(doc, Branding(seller_name="Acme"), "nl",
                     review_url="https://pay.example/i/abc", attach_ubl=write_ubl(doc))

Importing this package does not import WeasyPrint; the first render does.
"""

from einvoice.pdf.branding import Branding
from einvoice.pdf.epc import epc_qr_payload, epc_qr_png, epc_qr_svg
from einvoice.pdf.labels import SUPPORTED_LANGUAGES
from einvoice.pdf.render import epc_payload_for, print_html, render_html, render_pdf

__all__ = [
    "SUPPORTED_LANGUAGES",
    "Branding",
    "epc_payload_for",
    "epc_qr_payload",
    "epc_qr_png",
    "epc_qr_svg",
    "print_html",
    "render_html",
    "render_pdf",
]
