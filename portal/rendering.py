"""The PDF of an issued invoice: rendered once from its records, stored, and never again.

The PDF is the human-readable rendering of the frozen UBL (ARCHITECTURE.md,
decision 1): it carries the UBL inside (PDF/A-3b), is stored by its SHA-256
like the UBL, and once an invoice has one it is what was sent, so it is never
rendered anew. Rendering takes about 150 ms, which is why bulk callers leave
it to the background task in :mod:`portal.tasks`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.orm import Session

import einvoice
from distribution.deliveries import attach_pdf
from distribution.documents import DocumentFormat, DocumentStore
from distribution.events import record_event
from einvoice.pdf import SUPPORTED_LANGUAGES
from einvoice.pdf.branding import LOGO_MIME_TYPES
from portal.invoice_documents import document_from_invoice
from portal.issuing import archive_name, invoice_key
from portal.models import DocumentKind, Invoice, InvoiceStatus, Organisation

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "en"


class NotIssued(ValueError):
    """Only an issued invoice (one with a stored UBL) has a PDF."""


def branding_for(org: Organisation) -> einvoice.Branding:
    """The seller's look on its PDFs: display name, logo and colours."""
    logo = org.logo if org.logo and org.logo_mime_type in LOGO_MIME_TYPES else None
    fields = {"seller_name": org.display_name, "logo": logo,
              "logo_mime_type": org.logo_mime_type if logo else None}
    try:
        return einvoice.Branding(primary_colour=org.primary_colour,
                                 accent_colour=org.accent_colour, **fields)
    except ValueError:
        # A colour that is not hex notation must not stop an invoice from going out;
        # Herald's own colours stand in and the log says why.
        log.warning("organisation %s has colours Branding refuses (%r, %r); using defaults",
                    org.id, org.primary_colour, org.accent_colour)
        return einvoice.Branding(**fields)


def pdf_language(language: str | None) -> str:
    """The customer's language when the PDF template speaks it, else English."""
    base = (language or "").replace("_", "-").split("-")[0].lower()
    if language and base in SUPPORTED_LANGUAGES:
        return language
    return DEFAULT_LANGUAGE


def customer_today(invoice: Invoice) -> date:
    """Today in the customer's time zone: an invoice is overdue there, not in UTC."""
    try:
        zone = ZoneInfo(invoice.customer.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return datetime.now(zone).date()


def credited_amount(session: Session, invoice: Invoice) -> Decimal:
    """What the seller's credit notes that correct ``invoice`` add up to."""
    # Summed here, not in SQL: SQLite keeps amounts as text and would sum them as floats.
    amounts = session.scalars(
        sa.select(Invoice.payable_amount).where(
            Invoice.organisation_id == invoice.organisation_id,
            Invoice.customer_id == invoice.customer_id,
            Invoice.kind == DocumentKind.CREDIT_NOTE,
            Invoice.preceding_invoice_number == invoice.number,
            Invoice.ubl_sha256.is_not(None),
        )
    )
    return sum(amounts, Decimal("0.00"))


def status_label(session: Session, invoice: Invoice, today: date | None = None) -> str | None:
    """The status key printed on the PDF, or None for an open invoice not yet due.

    An open invoice gets no badge: the PDF is frozen, and "unpaid" would be
    wrong on it the day the money comes in. A fully credited invoice is shown
    as cancelled because the PDF template has no "credited" label.
    """
    if invoice.kind is DocumentKind.CREDIT_NOTE:
        return None
    if invoice.status is InvoiceStatus.VOID:
        return "cancelled"
    if invoice.status is InvoiceStatus.PAID:
        return "paid"
    if invoice.payable_amount > 0 and credited_amount(session, invoice) >= invoice.payable_amount:
        return "cancelled"
    if invoice.status is InvoiceStatus.DISPUTED:
        return "disputed"
    today = today or customer_today(invoice)
    if invoice.due_date is not None and invoice.due_date < today:
        return "overdue"
    if invoice.status is InvoiceStatus.PARTIALLY_PAID:
        return "partially_paid"
    return None


def review_url(public_url: str, invoice: Invoice) -> str:
    """The link printed as "review and pay": the invoice's stable address.

    The PDF is frozen, so it carries no expiring token: the address shows the
    invoice to its signed-in owner and otherwise offers a fresh link by email
    (see :mod:`portal.pay.links`).
    """
    from portal.pay.links import stable_url  # the pay package imports this module's models

    return stable_url(public_url, invoice)


def _document(invoice: Invoice) -> einvoice.Document:
    # The same Document issuing wrote the UBL from, so the PDF shows its amounts.
    doc = einvoice.compute(document_from_invoice(invoice))
    if invoice.tax_currency:
        doc.totals.tax_total_accounting = invoice.tax_amount_in_tax_currency
    return doc


@dataclass(frozen=True)
class PdfJob:
    """Everything needed to render one invoice's PDF, read in a short transaction."""

    invoice_id: int
    document: einvoice.Document
    branding: einvoice.Branding
    language: str
    review_url: str
    status: str | None
    ubl: bytes

    def render(self) -> bytes:
        """Render the PDF (about 150 ms of CPU; call it outside any transaction)."""
        return einvoice.render_pdf(self.document, self.branding, self.language,
                                   review_url=self.review_url, status=self.status,
                                   attach_ubl=self.ubl)


def prepare_pdf(session: Session, invoice: Invoice, store: DocumentStore, *,
                public_url: str) -> PdfJob:
    """Read what the invoice's PDF shows. Raises :class:`NotIssued` without a UBL."""
    if not invoice.ubl_sha256:
        raise NotIssued(f"{invoice.number} is not issued; issue it before rendering its PDF")
    return PdfJob(invoice.id, _document(invoice), branding_for(invoice.organisation),
                  pdf_language(invoice.customer.language), review_url(public_url, invoice),
                  status_label(session, invoice), store.get(session, invoice.ubl_sha256))


def store_pdf(session: Session, invoice: Invoice, pdf: bytes, store: DocumentStore, *,
              actor: str) -> str:
    """Keep the rendered PDF as the invoice's, unless another one got there first.

    Setting ``invoice.pdf_sha256`` is a conditional UPDATE, so when two workers
    render the same invoice at once only the first one's PDF is kept; the
    other's is rolled back to a savepoint and the winner's hash returned.
    """
    with session.begin_nested() as savepoint:
        stored = store.put(session, pdf, DocumentFormat.PDF, archive_name(invoice))
        won = session.execute(
            sa.update(Invoice)
            .where(Invoice.id == invoice.id, Invoice.pdf_sha256.is_(None))
            .values(pdf_sha256=stored.sha256)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not won:
            savepoint.rollback()
    session.refresh(invoice, ["pdf_sha256"])
    if not won:
        return invoice.pdf_sha256
    record_event(session, "invoice", invoice_key(invoice), "invoice.pdf_rendered",
                 {"pdf_sha256": stored.sha256, "size": stored.size,
                  "ubl_sha256": invoice.ubl_sha256}, actor=actor)
    # Messages created before the PDF existed (a run started right after an import)
    # wait for it before emailing; this is where they learn it.
    attach_pdf(session, invoice.ubl_sha256, stored.sha256)
    return stored.sha256


def render_invoice_pdf(session: Session, invoice: Invoice, store: DocumentStore, *,
                       public_url: str, actor: str = "herald:render") -> str:
    """Render, store and record the invoice's PDF once; return its SHA-256.

    An invoice that has a PDF keeps it: its hash is returned and nothing is
    rendered. The PDF is PDF/A-3b with the stored UBL attached. Flushes, never
    commits. Bulk callers use :func:`prepare_pdf` and :func:`store_pdf` in two
    short transactions and render between them, so no transaction (and, on
    SQLite, no write lock) is held for the 150 ms a render takes.
    """
    if invoice.pdf_sha256:
        return invoice.pdf_sha256
    job = prepare_pdf(session, invoice, store, public_url=public_url)
    return store_pdf(session, invoice, job.render(), store, actor=actor)
