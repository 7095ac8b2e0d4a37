"""Read-side queries for the invoice pages; every one is scoped to one customer."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from portal.models import Invoice, InvoiceLine, InvoiceStatus, Payment

PAGE_SIZE = 20


@dataclass(frozen=True, slots=True)
class InvoicePage:
    """One page of a customer's invoices."""

    invoices: list[Invoice]
    page: int
    has_next: bool
    total: int


def customer_invoices(
    session: Session,
    customer_id: int,
    *,
    status: InvoiceStatus | None = None,
    search: str | None = None,
    page: int = 1,
) -> InvoicePage:
    """The customer's invoices, newest first, optionally filtered by status and number."""
    query = sa.select(Invoice).where(Invoice.customer_id == customer_id)
    if status is not None:
        query = query.where(Invoice.status == status)
    if search:
        query = query.where(Invoice.number.ilike(f"%{_escape_like(search)}%", escape="\\"))
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = session.scalars(
        query.order_by(Invoice.issue_date.desc(), Invoice.id.desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
    ).all()
    return InvoicePage(list(rows[:PAGE_SIZE]), page, len(rows) > PAGE_SIZE, total or 0)


def customer_invoice(session: Session, customer_id: int, number: str) -> Invoice | None:
    """One invoice of the customer's with its lines, or None when it is not theirs."""
    return session.scalars(
        sa.select(Invoice)
        .where(Invoice.customer_id == customer_id, Invoice.number == number)
        .options(
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


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
