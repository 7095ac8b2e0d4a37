"""Runs of invoices and credit notes: the portal decides what to send, distribution sends it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from babel.dates import format_date
from babel.numbers import format_currency
from sqlalchemy.orm import Session, selectinload

from distribution.runs import MessageSpec, RunSummary, WaveOptions, create_run
from portal.issuing import invoice_key
from portal.models import Customer, CustomerKind, DocumentKind, Invoice, InvoiceStatus
from portal.recipients_sync import recipient_key, sync_customer

LOCALES = {"en": "en_IE", "nl": "nl_BE", "es": "es_ES"}
SENDABLE = (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID,
            InvoiceStatus.DISPUTED)


@dataclass(frozen=True, slots=True)
class RunSelection:
    """Which issued documents a run covers."""

    kind: DocumentKind = DocumentKind.INVOICE
    issued_from: date | None = None
    issued_to: date | None = None
    customer_kind: CustomerKind | None = None
    unpaid_only: bool = False

    def as_json(self) -> dict[str, str | bool | None]:
        """The selection as stored on the run."""
        return {"kind": self.kind.value,
                "issued_from": self.issued_from.isoformat() if self.issued_from else None,
                "issued_to": self.issued_to.isoformat() if self.issued_to else None,
                "customer_kind": self.customer_kind.value if self.customer_kind else None,
                "unpaid_only": self.unpaid_only}


def select_documents(session: Session, selection: RunSelection) -> list[Invoice]:
    """The issued documents a selection covers, oldest first."""
    query = (sa.select(Invoice).join(Customer, Customer.id == Invoice.customer_id)
             .where(Invoice.kind == selection.kind, Invoice.ubl_sha256.is_not(None),
                    Invoice.status.in_(SENDABLE))
             .options(selectinload(Invoice.customer).selectinload(Customer.contacts),
                      selectinload(Invoice.organisation))
             .order_by(Invoice.issue_date, Invoice.id))
    if selection.issued_from:
        query = query.where(Invoice.issue_date >= selection.issued_from)
    if selection.issued_to:
        query = query.where(Invoice.issue_date <= selection.issued_to)
    if selection.customer_kind:
        query = query.where(Customer.kind == selection.customer_kind)
    if selection.unpaid_only:
        query = query.where(Invoice.status.in_((InvoiceStatus.ISSUED,
                                                InvoiceStatus.PARTIALLY_PAID)))
    return list(session.scalars(query))


def message_spec(invoice: Invoice, public_url: str) -> MessageSpec:
    """What the message about one document says, formatted in the customer's language."""
    customer = invoice.customer
    locale = LOCALES.get(customer.language, "en_IE")
    return MessageSpec(
        recipient_key=recipient_key(customer),
        subject_key=f"{invoice.kind.value}:{invoice_key(invoice)}",
        parameters={
            "customer_name": customer.name,
            "seller_name": invoice.organisation.display_name,
            "number": invoice.number,
            "amount": format_currency(invoice.payable_amount, invoice.currency, locale=locale),
            "due_date": format_date(invoice.due_date, "long", locale=locale)
            if invoice.due_date else "",
            "link": f"{public_url}/invoices/{invoice.number}",
        },
        link=f"{public_url}/invoices/{invoice.number}",
        ubl_sha256=invoice.ubl_sha256,
        pdf_sha256=invoice.pdf_sha256,
    )


def create_document_run(session: Session, selection: RunSelection, options: WaveOptions, *,
                        name: str, public_url: str, created_by: str) -> RunSummary:
    """Create a run over the selected documents (those already sent are skipped)."""
    documents = select_documents(session, selection)
    for customer in {invoice.customer for invoice in documents}:
        sync_customer(session, customer, actor=created_by)
    return create_run(
        session, name=name, message_type=selection.kind.value,
        specs=[message_spec(invoice, public_url) for invoice in documents],
        selection=selection.as_json(), created_by=created_by, options=options)
