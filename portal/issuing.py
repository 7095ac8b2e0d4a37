"""Issuing freezes an invoice: its UBL is written once, validated, stored and hashed.

After issuing, nothing alters the document: the stored UBL is the legal source,
its SHA-256 is on the invoice and in the event log, and corrections are credit
notes. A fatal finding stops issuing and is shown to whoever issued. The PDF
is not rendered here (about 150 ms each): :mod:`portal.rendering` does it once,
from the worker after commit (:func:`portal.tasks.enqueue_pdf_rendering`) or on
the first download.

A customer who wants the PDF inside their e-invoice (``Customer.embed_pdf_in_ubl``)
still has the canonical UBL stored and hashed: the PDF/A-3b embeds that UBL, so
the UBL cannot also embed the PDF without a cycle. What they are sent is
derived at send time from the two stored documents (:func:`ubl_as_sent`,
``einvoice.embed_pdf``), deterministic, so it can be rebuilt at any time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

import einvoice
from distribution.document_names import DocumentName
from distribution.documents import DocumentFormat, DocumentStore
from distribution.events import record_event
from distribution.sqltypes import utcnow
from portal.invoice_documents import document_from_invoice
from portal.models import DocumentKind, Invoice, InvoiceStatus


@dataclass(frozen=True, slots=True)
class IssueProblem:
    """Why a document cannot be issued: the rule, where, and what to do."""

    rule: str
    location: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.location}: {self.message}"


class IssuingRefused(Exception):
    """The document breaks a rule; it stays as it was."""

    def __init__(self, number: str, problems: list[IssueProblem]) -> None:
        super().__init__(f"{number} cannot be issued: " + "; ".join(map(str, problems)))
        self.number = number
        self.problems = problems


def _write_ubl(invoice: Invoice, rules_dir: Path | None) -> bytes:
    # Peppol BIS for a customer on Peppol, EN 16931 alone otherwise (see specification()).
    doc = document_from_invoice(invoice)
    try:
        doc = einvoice.compute(doc, rules_dir=rules_dir)
        if invoice.tax_currency:
            doc.totals.tax_total_accounting = invoice.tax_amount_in_tax_currency
        return einvoice.write_ubl(doc, rules_dir)
    except einvoice.InvoiceRuleError as exc:
        raise IssuingRefused(invoice.number, [
            IssueProblem(p.rule, p.field, p.message) for p in einvoice.check(doc, rules_dir)
        ] or [IssueProblem(exc.rule, exc.field, exc.message)]) from exc
    except ValueError as exc:  # lxml: a text holds a character XML cannot carry
        raise IssuingRefused(invoice.number, [IssueProblem(
            "HERALD-XML", "", f"the e-invoice cannot be written ({exc}); a text of the invoice "
                              "or its customer holds a character XML cannot carry")]) from exc


def invoice_key(invoice: Invoice) -> str:
    """The subject key of an invoice in the event log."""
    return f"{invoice.organisation_id}:{invoice.number}"


def archive_name(invoice: Invoice, suffix: str = "") -> DocumentName:
    """Where the invoice's documents are filed in a folder or object store: by issue
    year, customer number and document number (``2026/C-000123/INV-2026-000045.xml``)."""
    return DocumentName(invoice.issue_date.year, invoice.customer.number, invoice.number, suffix)


def issue_invoice(session: Session, invoice: Invoice, *, store: DocumentStore,
                  rules_dir: Path | None, actor: str, official_rules: bool = True,
                  ubl: bytes | None = None) -> str:
    """Write, validate and store the invoice's UBL; return its SHA-256.

    A draft becomes issued; an invoice that already has its UBL is left alone
    (issuing is idempotent). With ``official_rules`` and a rules folder, the
    UBL must pass the XSD and the CEN rules, and Peppol's when it declares Peppol
    BIS (a customer on Peppol), without a fatal finding.
    ``ubl`` is the document as another system issued it (a UBL import): it is
    validated and kept byte for byte instead of being written anew.
    """
    if invoice.ubl_sha256:
        return invoice.ubl_sha256
    if invoice.status is InvoiceStatus.VOID:
        raise IssuingRefused(invoice.number, [IssueProblem(
            "HERALD-VOID", "status", "a void document cannot be issued")])
    if ubl is None:
        ubl = _write_ubl(invoice, rules_dir)
    if official_rules and rules_dir is not None:
        findings = einvoice.validate(ubl, rules_dir)
        if findings.fatal:
            raise IssuingRefused(invoice.number, [
                IssueProblem(f.rule_id, f.location, f.message) for f in findings.fatal])
    # An imported UBL (as its issuer wrote it) is filed under the same name as one written here.
    stored = store.put(session, ubl, DocumentFormat.UBL, archive_name(invoice))
    invoice.ubl_sha256 = stored.sha256
    if invoice.status is InvoiceStatus.DRAFT:
        invoice.status = InvoiceStatus.ISSUED
    invoice.issued_at = invoice.issued_at or utcnow()
    record_event(session, "invoice", invoice_key(invoice), "invoice.issued",
                 {"ubl_sha256": stored.sha256, "size": stored.size,
                  "official_rules": bool(official_rules and rules_dir)}, actor=actor)
    if invoice.kind is DocumentKind.CREDIT_NOTE:
        # A credit note that settles its invoice stops that invoice's reminders now,
        # not at the next reminder run. (Imported here: reminders builds on issuing.)
        from portal.reminders import stop_if_fully_credited

        stop_if_fully_credited(session, invoice, actor=actor)
    return stored.sha256


def ubl_as_sent(session: Session, invoice: Invoice, store: DocumentStore) -> bytes | None:
    """The UBL the customer receives: the stored one, with the stored PDF embedded if they
    asked for it (None while the document is not issued, or its PDF not yet rendered)."""
    if not invoice.ubl_sha256:
        return None
    ubl = store.get(session, invoice.ubl_sha256)
    if not invoice.customer.embed_pdf_in_ubl:
        return ubl
    if not invoice.pdf_sha256:
        return None
    return einvoice.embed_pdf(ubl, store.get(session, invoice.pdf_sha256), invoice.number)
