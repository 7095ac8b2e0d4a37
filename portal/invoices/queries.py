"""Read-side queries for the invoice pages; every one is scoped to one customer.

A page of the list costs a fixed number of statements whatever its length: the
page with the count of the whole list, the customer's unpaid invoices for the open
balance, and one each for the payments and credit notes of both sets together
(money is added up in Python: SQLite keeps it as text).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload, selectinload

from distribution.sqltypes import utcnow
from portal.invoices.filters import InvoiceFilters
from portal.models import Customer, DocumentKind, Invoice, InvoiceLine, InvoiceStatus, Payment
from portal.models.disputes import ACTIVE_DISPUTE, Dispute
from portal.reminders import credited_amounts, paid_amounts

PAGE_SIZE = 20
MAX_PAGE = 1_000_000  # a larger page number is past the end of any customer's list
ZERO = Decimal("0.00")
# Statuses in which money may still be owed.
OWING = (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.DISPUTED)


@dataclass(frozen=True, slots=True)
class InvoiceRow:
    """An invoice in the list with what is still open on it (None for credit notes)."""

    invoice: Invoice
    open_balance: Decimal | None
    overdue: bool


@dataclass(frozen=True, slots=True)
class InvoicePage:
    """One page of a customer's invoices."""

    rows: list[InvoiceRow]
    page: int
    has_next: bool
    total: int

    @property
    def pages(self) -> int:
        """How many pages the whole list has."""
        return max((self.total + PAGE_SIZE - 1) // PAGE_SIZE, 1)


def open_balances(session: Session, invoices: list[Invoice]) -> dict[int, Decimal]:
    """Per invoice id: the payable amount less payments, refunds and crediting notes."""
    targets = [i for i in invoices if i.kind is DocumentKind.INVOICE]
    paid = paid_amounts(session, targets)
    credited = credited_amounts(session, targets)
    return {i.id: _balance(i, paid[i.id], credited[i.id]) for i in targets}


def _balance(invoice: Invoice, paid: Decimal, credited: Decimal) -> Decimal:
    if invoice.status in (InvoiceStatus.VOID, InvoiceStatus.DRAFT):
        return ZERO
    return invoice.payable_amount - paid - credited


def invoice_open_balance(invoice: Invoice, payments: list[Payment],
                         notes: list[Invoice]) -> Decimal | None:
    """:func:`open_balances` of one invoice from its payments and crediting notes, no query.

    ``notes`` are :func:`crediting_notes`; as in :func:`open_balances`, only the issued
    ones (those with a UBL document) count. None for a credit note.
    """
    if invoice.kind is not DocumentKind.INVOICE:
        return None
    paid = sum((p.signed_amount for p in payments), ZERO)
    credited = sum((n.payable_amount for n in notes if n.ubl_sha256 is not None), ZERO)
    return _balance(invoice, paid, credited)


def _is_overdue(invoice: Invoice, balance: Decimal | None, today: date) -> bool:
    return (invoice.due_date is not None and invoice.due_date < today
            and invoice.status in OWING and balance is not None and balance > 0)


def customer_invoice_list(session: Session, customer_id: int, filters: InvoiceFilters, *,
                          today: date | None = None, with_totals: bool = True
                          ) -> tuple[InvoicePage, list[OpenTotal]]:
    """One page of the customer's invoices and, ``with_totals``, what they still owe.

    What they owe is the open balance per currency over all their unpaid invoices. The
    open balances of the page and of those invoices are looked up together, so the whole
    list costs the same few statements however long it is.
    """
    today = today or utcnow().date()
    owing = _owing_invoices(session, customer_id) if with_totals else []
    invoices, page, total = _page_of(session, _filtered(customer_id, filters, today), filters)
    has_next = len(invoices) > PAGE_SIZE
    invoices = invoices[:PAGE_SIZE]
    balances = open_balances(session, list({i.id: i for i in [*invoices, *owing]}.values()))
    rows = [InvoiceRow(i, balances.get(i.id), _is_overdue(i, balances.get(i.id), today))
            for i in invoices]
    return InvoicePage(rows, page, has_next, total), _totals(owing, balances, today)


def _filtered(customer_id: int, filters: InvoiceFilters, today: date) -> sa.Select:
    query = sa.select(Invoice).where(Invoice.customer_id == customer_id,
                                     Invoice.status != InvoiceStatus.DRAFT)
    if filters.status is not None:
        query = query.where(Invoice.status == filters.status)
    if filters.kind is not None:
        query = query.where(Invoice.kind == filters.kind)
    if filters.issued_from:
        query = query.where(Invoice.issue_date >= filters.issued_from)
    if filters.issued_to:
        query = query.where(Invoice.issue_date <= filters.issued_to)
    if filters.overdue:
        query = query.where(Invoice.kind == DocumentKind.INVOICE, Invoice.due_date < today,
                            Invoice.status.in_(OWING))
    if filters.search:
        pattern = f"%{_escape_like(filters.search)}%"
        query = query.where(sa.or_(*(column.ilike(pattern, escape="\\") for column in (
            Invoice.number, Invoice.buyer_reference, Invoice.order_reference,
            Invoice.payment_reference))))
    return query


def _page_of(session: Session, query: sa.Select, filters: InvoiceFilters
             ) -> tuple[list[Invoice], int, int]:
    """The requested page (one row more, to tell whether a next one exists), its number
    and the count of the whole list, in one statement while the page exists."""
    rows = []
    if filters.page <= MAX_PAGE:  # an offset past 64 bits would be an error, not a page
        ordered = query.add_columns(sa.func.count().over()).order_by(*_order(session, filters))
        rows = session.execute(ordered.offset((filters.page - 1) * PAGE_SIZE)
                               .limit(PAGE_SIZE + 1)).all()
    if rows:
        return [invoice for invoice, _count in rows], filters.page, rows[0][1]
    if filters.page == 1:
        return [], 1, 0
    # Past the end (an old bookmark, a hand-typed URL): show the last page instead.
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    page = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    invoices = list(session.scalars(query.order_by(*_order(session, filters))
                                    .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    return invoices, page, total


def _order(session: Session, filters: InvoiceFilters) -> list[sa.ColumnElement]:
    if filters.sort == "amount":
        column: sa.ColumnElement = Invoice.payable_amount
        if session.get_bind().dialect.name == "sqlite":
            # Stored as text there; ordering (not adding) by its numeric value is exact
            # enough for amounts with two decimals.
            column = sa.cast(Invoice.payable_amount, sa.Float)
    elif filters.sort == "due":
        column = Invoice.due_date
    else:
        column = Invoice.issue_date
    direction = column.desc() if filters.descending else column.asc()
    tie = Invoice.id.desc() if filters.descending else Invoice.id.asc()
    if filters.sort == "due":  # documents without a due date last, either way
        return [Invoice.due_date.is_(None), direction, tie]
    return [direction, tie]


@dataclass(frozen=True, slots=True)
class OpenTotal:
    """What the customer still owes in one currency."""

    currency: str
    amount: Decimal
    invoices: int
    overdue: int


def _owing_invoices(session: Session, customer_id: int) -> list[Invoice]:
    return list(session.scalars(sa.select(Invoice).where(
        Invoice.customer_id == customer_id, Invoice.kind == DocumentKind.INVOICE,
        Invoice.status.in_(OWING))))


def _totals(invoices: list[Invoice], balances: dict[int, Decimal], today: date
            ) -> list[OpenTotal]:
    totals: dict[str, list] = defaultdict(lambda: [ZERO, 0, 0])
    for invoice in invoices:
        balance = balances[invoice.id]
        if balance <= 0:
            continue
        entry = totals[invoice.currency]
        entry[0] += balance
        entry[1] += 1
        entry[2] += _is_overdue(invoice, balance, today)
    return [OpenTotal(currency, *values) for currency, values in sorted(totals.items())]


def customer_invoice(session: Session, customer_id: int, number: str) -> Invoice | None:
    """One invoice of the customer's with its lines, or None when it is not theirs.

    Its seller and customer (with contacts) come along: the page and its VAT
    breakdown read them, and loading them lazily would cost a statement each.
    """
    return session.scalars(
        sa.select(Invoice)
        .where(Invoice.customer_id == customer_id, Invoice.number == number,
               Invoice.status != InvoiceStatus.DRAFT)
        .options(
            joinedload(Invoice.organisation),
            joinedload(Invoice.customer).selectinload(Customer.contacts),
            selectinload(Invoice.lines).selectinload(InvoiceLine.allowances_charges),
            selectinload(Invoice.allowances_charges),
        )
    ).first()


def invoice_payments(session: Session, invoice_id: int) -> list[Payment]:
    """Payments and refunds recorded against an invoice, oldest first."""
    return list(
        session.scalars(
            sa.select(Payment).where(Payment.invoice_id == invoice_id).order_by(Payment.received_at)
        )
    )


def crediting_notes(session: Session, invoice: Invoice) -> list[Invoice]:
    """The customer's issued credit notes that correct ``invoice``, oldest first."""
    if invoice.is_credit_note:
        return []
    return list(session.scalars(sa.select(Invoice).where(
        Invoice.customer_id == invoice.customer_id,
        Invoice.organisation_id == invoice.organisation_id,
        Invoice.kind == DocumentKind.CREDIT_NOTE,
        Invoice.preceding_invoice_number == invoice.number,
        Invoice.status.not_in((InvoiceStatus.DRAFT, InvoiceStatus.VOID)))
        .order_by(Invoice.issue_date, Invoice.id)))


def corrected_invoice(session: Session, note: Invoice) -> Invoice | None:
    """The customer's invoice a credit note corrects, when it is in Herald."""
    if not note.is_credit_note or not note.preceding_invoice_number:
        return None
    return session.scalars(sa.select(Invoice).where(
        Invoice.customer_id == note.customer_id,
        Invoice.organisation_id == note.organisation_id,
        Invoice.kind == DocumentKind.INVOICE,
        Invoice.number == note.preceding_invoice_number,
        Invoice.status != InvoiceStatus.DRAFT)).first()


def invoice_disputes(session: Session, invoice: Invoice) -> list[Dispute]:
    """The invoice's disputes, newest first (active ones are what the page offers to follow)."""
    return list(session.scalars(sa.select(Dispute).where(Dispute.invoice_id == invoice.id)
                                .order_by(Dispute.id.desc())))


def has_active_dispute(disputes: list[Dispute]) -> bool:
    """True when one of ``disputes`` is open or under review."""
    return any(d.status in ACTIVE_DISPUTE for d in disputes)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
