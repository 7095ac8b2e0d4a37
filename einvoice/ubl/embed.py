"""Derive a UBL document that carries the invoice's PDF, from the stored UBL and PDF.

The issued UBL stays the canonical document, written once and hashed. Its PDF
(PDF/A-3b) embeds that canonical UBL, so the PDF cannot also sit inside the
canonical UBL without a cycle. A customer who wants the PDF inside their
e-invoice gets a variant: the canonical UBL with one more
``cac:AdditionalDocumentReference`` holding the PDF, derived when it is sent.
The derivation is deterministic, so the variant can always be rebuilt from the
two stored documents and checked against what was sent.
"""

from __future__ import annotations

import re

from lxml import etree

from einvoice.errors import InvoiceRuleError
from einvoice.model import Attachment
from einvoice.rules import EMBEDDED_MIME_CODES
from einvoice.ubl.namespaces import CAC_NS, CREDIT_NOTE_NS, INVOICE_NS
from einvoice.ubl.reader import parse_safely
from einvoice.ubl.writer import write_attachment
from einvoice.ubl.xmlbuild import Node, serialize

__all__ = ["embed_attachment", "embed_pdf", "pdf_attachment"]

PDF_MIME = "application/pdf"

# What may follow AdditionalDocumentReference in each document's XSD sequence
# (UBL 2.1 Invoice / CreditNote); the new reference goes before the first of these.
_FOLLOWING = {
    f"{{{INVOICE_NS}}}Invoice": ("ProjectReference", "Signature", "AccountingSupplierParty"),
    f"{{{CREDIT_NOTE_NS}}}CreditNote": (
        "StatementDocumentReference",
        "OriginatorDocumentReference",
        "Signature",
        "AccountingSupplierParty",
    ),
}
_REFERENCE = f"{{{CAC_NS}}}AdditionalDocumentReference"


def pdf_attachment(pdf: bytes, number: str, description: str | None = None) -> Attachment:
    """The additional document reference (BG-24) that carries document ``number``'s PDF."""
    if not pdf.startswith(b"%PDF-"):
        raise InvoiceRuleError("BR-CL-24", "attachments.content", "the content is not a PDF")
    return Attachment(
        id=number,
        description=description or f"{number} (PDF)",
        mime_code=PDF_MIME,
        # Numbers may hold "/" or spaces; the file name must stay portable.
        filename=(re.sub(r"[^0-9A-Za-z._-]+", "_", number).strip("_") or "document") + ".pdf",
        content=pdf,
    )


def embed_attachment(ubl: bytes, attachment: Attachment) -> bytes:
    """Return ``ubl`` with ``attachment`` added as an AdditionalDocumentReference.

    The reference goes after the existing ones, in XSD order; everything else
    is kept as it was. Raises :class:`~einvoice.errors.InvoiceRuleError` for
    an embedded attachment without an allowed MIME code or a file name, or
    whose file name the document already uses, and
    :class:`~einvoice.errors.UblReadError` when ``ubl`` is not a UBL document.
    """
    if attachment.content is not None:
        if attachment.mime_code not in EMBEDDED_MIME_CODES:
            raise InvoiceRuleError(
                "BR-CL-24", "attachments.mime_code", f"{attachment.mime_code!r} is not allowed"
            )
        if not attachment.filename:
            raise InvoiceRuleError(
                "UBL-DT-07", "attachments.filename", "an embedded document needs its file name"
            )
    root = parse_safely(ubl)
    following = _FOLLOWING.get(root.tag)
    if following is None:
        raise InvoiceRuleError(
            "UBL-ROOT", "kind", f"{root.tag!r} is neither a UBL 2.1 Invoice nor CreditNote"
        )
    references = root.findall(_REFERENCE)
    taken = {
        (binary.get("filename") or "").lower()
        for reference in references
        for binary in reference.iter("{*}EmbeddedDocumentBinaryObject")
    }
    if attachment.filename and attachment.filename.lower() in taken:
        raise InvoiceRuleError(
            "DE-R-022",
            "attachments.filename",
            f"the document already embeds a file called {attachment.filename!r}",
        )
    element = _element(attachment)
    if references:
        references[-1].addnext(element)
    else:
        names = {f"{{{CAC_NS}}}{name}" for name in following}
        anchor = next((child for child in root if child.tag in names), None)
        if anchor is None:  # not a valid UBL document, but keep the order sensible
            root.append(element)
        else:
            anchor.addprevious(element)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _element(attachment: Attachment) -> etree._Element:
    # Written by the writer's own code, then parsed: the same bytes as write_ubl gives.
    holder: Node = []
    write_attachment(holder, attachment)
    wrapper = etree.fromstring(serialize("Wrapper", INVOICE_NS, holder, declaration=False))
    return wrapper[0]


def embed_pdf(ubl: bytes, pdf: bytes, number: str | None = None) -> bytes:
    """Return ``ubl`` with ``pdf`` embedded as ``<number>.pdf`` (``number`` defaults to cbc:ID)."""
    if number is None:
        number = (parse_safely(ubl).findtext("{*}ID") or "").strip() or "document"
    return embed_attachment(ubl, pdf_attachment(pdf, number))

