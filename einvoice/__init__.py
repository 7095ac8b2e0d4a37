"""Herald's e-invoice package: the EN 16931 model, its arithmetic, UBL 2.1 / Peppol BIS 3.0 I/O.

Pure Python (stdlib and lxml only); nothing here touches a database or the web.

Typical use::

    from einvoice import Document, compute, write_ubl, read_ubl
    doc = compute(doc)            # fills line amounts, VAT breakdown, totals
    xml = write_ubl(doc)          # raises InvoiceRuleError if a rule is broken
    same = read_ubl(xml)          # raises UblReadError on unreadable input
    sent = embed_pdf(xml, pdf)    # the UBL with its PDF embedded (BG-24), for who wants it
    findings = validate(xml, rules_dir)  # XSD + official CEN/Peppol schematron
"""

from einvoice.calc import compute
from einvoice.errors import EInvoiceError, InvoiceRuleError, UblReadError
from einvoice.model import (
    Address,
    AllowanceCharge,
    Attachment,
    Delivery,
    Document,
    DocumentKind,
    Line,
    Party,
    PaymentMeans,
    Totals,
    VatBreakdown,
    VatExemption,
)
from einvoice.pdf import Branding, render_pdf
from einvoice.rules import check
from einvoice.ubl import embed_attachment, embed_pdf, pdf_attachment, read_ubl, write_ubl
from einvoice.validation import Finding, Findings, validate

__all__ = [
    "Address",
    "AllowanceCharge",
    "Attachment",
    "Branding",
    "Delivery",
    "Document",
    "DocumentKind",
    "EInvoiceError",
    "Finding",
    "Findings",
    "InvoiceRuleError",
    "Line",
    "Party",
    "PaymentMeans",
    "Totals",
    "UblReadError",
    "VatBreakdown",
    "VatExemption",
    "check",
    "compute",
    "embed_attachment",
    "embed_pdf",
    "pdf_attachment",
    "read_ubl",
    "render_pdf",
    "validate",
    "write_ubl",
]
