"""Runs of invoices and credit notes: the portal decides what to send, distribution sends it."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency
from sqlalchemy.orm import Session, selectinload

from distribution.bulk import among, collector_paused, present
from distribution.deliveries import Message
from distribution.runs import MessageSpec, RunSummary, WaveOptions, create_run
from distribution.sending import EMBED_PDF_IN_UBL
from portal.issuing import invoice_key
from portal.models import Customer, CustomerKind, DocumentKind, Invoice, InvoiceStatus, Organisation
from portal.recipients_sync import recipient_key, sync_customers

LOCALES = {"en": "en_IE", "nl": "nl_BE", "es": "es_ES"}
CUSTOMER_CHUNK = 5000
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


@dataclass(frozen=True, slots=True)
class RunDocument:
    """What a run needs of one issued document, read as a plain row.

    A run may cover a million documents; loading each as an ORM ``Invoice`` with
    its forty columns was most of the time planning spent outside ``create_run``.
    Its customer and seller are the session's ORM objects, loaded once each.
    """

    id: int
    organisation_id: int
    customer_id: int
    kind: DocumentKind
    number: str
    issue_date: date
    due_date: date | None
    currency: str
    payable_amount: Decimal
    content_sha256: str
    ubl_sha256: str | None
    pdf_sha256: str | None
    customer: Customer
    organisation: Organisation


_RUN_COLUMNS = (Invoice.id, Invoice.organisation_id, Invoice.customer_id, Invoice.kind,
                Invoice.number, Invoice.issue_date, Invoice.due_date, Invoice.currency,
                Invoice.payable_amount, Invoice.content_sha256, Invoice.ubl_sha256,
                Invoice.pdf_sha256)


def select_documents(session: Session, selection: RunSelection) -> list[RunDocument]:
    """The issued documents a selection covers, oldest first."""
    query = (sa.select(*_RUN_COLUMNS).join(Customer, Customer.id == Invoice.customer_id)
             .where(Invoice.kind == selection.kind, Invoice.ubl_sha256.is_not(None),
                    Invoice.status.in_(SENDABLE))
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
    rows = session.execute(query).all()
    customers = _customers(session, {row.customer_id for row in rows})
    sellers = {seller.id: seller for seller in session.scalars(
        sa.select(Organisation).where(Organisation.id.in_({row.organisation_id
                                                           for row in rows})))}
    return [RunDocument(*row, customer=customers[row.customer_id],
                        organisation=sellers[row.organisation_id]) for row in rows]


def _customers(session: Session, ids: set[int]) -> dict[int, Customer]:
    # With their contacts: syncing recipients reads them for every customer.
    ordered, found = sorted(ids), {}
    for start in range(0, len(ordered), CUSTOMER_CHUNK):
        found.update((customer.id, customer) for customer in session.scalars(
            sa.select(Customer).options(selectinload(Customer.contacts))
            .where(among(session, Customer.id, ordered[start:start + CUSTOMER_CHUNK]))))
    return found


def message_spec(invoice: Invoice | RunDocument, public_url: str,
                 link: str | None = None) -> MessageSpec:
    """What the message about one document says, formatted in the customer's language.

    ``link`` is the message's own "review & pay" link; without one it points at
    the invoice's stable address (which asks for a fresh link when needed).
    """
    from portal.pay.links import stable_url  # it imports the models this module does

    customer = invoice.customer
    locale = _locale(LOCALES.get(customer.language, "en_IE"))
    link = link or stable_url(public_url, invoice)
    return MessageSpec(
        recipient_key=recipient_key(customer),
        subject_key=f"{invoice.kind.value}:{invoice_key(invoice)}",
        parameters={
            "customer_name": customer.name,
            "seller_name": invoice.organisation.display_name,
            "number": invoice.number,
            "amount": format_currency(invoice.payable_amount, invoice.currency, locale=locale),
            "due_date": _long_date(invoice.due_date, locale) if invoice.due_date else "",
            "link": link,
            EMBED_PDF_IN_UBL: customer.embed_pdf_in_ubl,
        },
        link=link,
        ubl_sha256=invoice.ubl_sha256,
        pdf_sha256=invoice.pdf_sha256,
    )


@functools.cache
def _locale(code: str) -> Locale:
    # Babel parses a locale given by name on every call: most of a spec's cost in a run
    # of a million documents.
    return Locale.parse(code)


@functools.lru_cache(maxsize=4096)
def _long_date(day: date, locale: Locale) -> str:
    return format_date(day, "long", locale=locale)  # a run has few distinct due dates


@collector_paused()  # a million documents and their objects: see collector_paused
def create_document_run(session: Session, selection: RunSelection, options: WaveOptions, *,
                        name: str, public_url: str, created_by: str,
                        link_days: int = 30) -> RunSummary:
    """Create a run over the selected documents (those already sent are skipped).

    Each new message gets a "review & pay" link of its own, valid ``link_days``
    past the due date; the links are made in bulk, one per document not sent yet.
    """
    from portal.pay.links import issue_links, link_url

    documents = select_documents(session, selection)
    sync_customers(session, {invoice.customer for invoice in documents}, actor=created_by)
    subjects = {invoice.id: f"{invoice.kind.value}:{invoice_key(invoice)}"
                for invoice in documents}
    sent = _existing_subjects(session, selection.kind.value, set(subjects.values()))
    tokens = issue_links(session, [i for i in documents if subjects[i.id] not in sent],
                         days=link_days, purpose="message", actor=created_by)
    return create_run(
        session, name=name, message_type=selection.kind.value,
        specs=[message_spec(invoice, public_url,
                            link_url(public_url, tokens[invoice.id])
                            if invoice.id in tokens else None)
               for invoice in documents],
        selection=selection.as_json(), created_by=created_by, options=options)


def _existing_subjects(session: Session, message_type: str, subjects: set[str]) -> set[str]:
    # Messages already made are skipped by create_run; they need no new link.
    # present(): one index probe per key, never a plan kept from when the table was small.
    found: set[str] = set()
    ordered = sorted(subjects)
    for start in range(0, len(ordered), 5000):
        found |= present(session, Message.subject_key, ordered[start:start + 5000],
                         Message.message_type == message_type)
    return found
