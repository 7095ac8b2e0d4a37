"""Invoices and credit notes as the seller issued them, with their lines and allowances."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import (
    Base,
    Money,
    Quantity,
    Rate,
    UTCDateTime,
    enum_column,
    utcnow,
)
from portal.models.customers import Account, Customer
from portal.models.organisations import Organisation


class DocumentKind(enum.StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class InvoiceStatus(enum.StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VOID = "void"
    DISPUTED = "disputed"


class Invoice(Base):
    """An invoice or credit note; its number is unique per seller."""

    __tablename__ = "invoices"
    __table_args__ = (
        sa.UniqueConstraint("organisation_id", "number"),
        sa.Index("ix_invoices_customer_issue", "customer_id", "issue_date"),
        sa.CheckConstraint("length(currency) = 3", name="currency_iso"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"))
    account_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    kind: Mapped[DocumentKind] = mapped_column(enum_column(DocumentKind))
    type_code: Mapped[str] = mapped_column(sa.String(3))  # UNCL1001: 380 invoice, 381 credit note
    number: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[InvoiceStatus] = mapped_column(enum_column(InvoiceStatus), index=True)
    issue_date: Mapped[date]
    due_date: Mapped[date | None] = mapped_column(index=True)
    currency: Mapped[str] = mapped_column(sa.String(3))
    tax_currency: Mapped[str | None] = mapped_column(sa.String(3))
    tax_amount_in_tax_currency: Mapped[Decimal | None] = mapped_column(Money())
    buyer_reference: Mapped[str | None] = mapped_column(sa.String(200))
    order_reference: Mapped[str | None] = mapped_column(sa.String(200))
    # Indexed: open balances look credit notes up by the invoice they correct.
    preceding_invoice_number: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    preceding_invoice_date: Mapped[date | None]
    period_start: Mapped[date | None]
    period_end: Mapped[date | None]
    payment_terms: Mapped[str | None] = mapped_column(sa.Text)
    payment_means_code: Mapped[str | None] = mapped_column(sa.String(3))
    payment_reference: Mapped[str | None] = mapped_column(sa.String(140))
    note: Mapped[str | None] = mapped_column(sa.Text)
    line_extension_amount: Mapped[Decimal] = mapped_column(Money())
    allowance_total: Mapped[Decimal] = mapped_column(Money())
    charge_total: Mapped[Decimal] = mapped_column(Money())
    tax_exclusive_amount: Mapped[Decimal] = mapped_column(Money())
    tax_amount: Mapped[Decimal] = mapped_column(Money())
    tax_inclusive_amount: Mapped[Decimal] = mapped_column(Money())
    prepaid_amount: Mapped[Decimal] = mapped_column(Money())
    rounding_amount: Mapped[Decimal] = mapped_column(Money())
    payable_amount: Mapped[Decimal] = mapped_column(Money())
    source: Mapped[str] = mapped_column(sa.String(16))  # json, csv, ubl, demo, api
    content_sha256: Mapped[str] = mapped_column(sa.String(64))
    # The frozen documents (distribution's ``documents`` table), set once when issued.
    ubl_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    pdf_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation] = relationship()
    customer: Mapped[Customer] = relationship()
    account: Mapped[Account | None] = relationship()
    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", cascade="all, delete-orphan", order_by="InvoiceLine.position"
    )
    allowances_charges: Mapped[list[AllowanceCharge]] = relationship(
        cascade="all, delete-orphan", order_by="AllowanceCharge.id"
    )

    @property
    def is_credit_note(self) -> bool:
        """True for a credit note."""
        return self.kind is DocumentKind.CREDIT_NOTE

    def __repr__(self) -> str:
        return f"<Invoice {self.number} {self.status}>"


class InvoiceLine(Base):
    """One line of an invoice: what was sold, how much, at what net price and VAT."""

    __tablename__ = "invoice_lines"
    __table_args__ = (sa.UniqueConstraint("invoice_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id", ondelete="CASCADE"))
    position: Mapped[int]
    line_id: Mapped[str] = mapped_column(sa.String(40))  # BT-126, as the seller numbered it
    item_name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    seller_item_id: Mapped[str | None] = mapped_column(sa.String(64))
    quantity: Mapped[Decimal] = mapped_column(Quantity())
    unit_code: Mapped[str] = mapped_column(sa.String(3))  # UN/ECE Rec 20/21
    net_price: Mapped[Decimal] = mapped_column(Quantity())
    base_quantity: Mapped[Decimal | None] = mapped_column(Quantity())
    vat_category: Mapped[str] = mapped_column(sa.String(2))  # UNCL5305
    vat_rate: Mapped[Decimal | None] = mapped_column(Rate())
    vat_exemption_reason: Mapped[str | None] = mapped_column(sa.String(200))
    vat_exemption_reason_code: Mapped[str | None] = mapped_column(sa.String(30))
    period_start: Mapped[date | None]
    period_end: Mapped[date | None]
    net_amount: Mapped[Decimal] = mapped_column(Money())

    invoice: Mapped[Invoice] = relationship(back_populates="lines")
    allowances_charges: Mapped[list[LineAllowanceCharge]] = relationship(
        cascade="all, delete-orphan", order_by="LineAllowanceCharge.id"
    )


class _AllowanceChargeColumns:
    """What a discount (allowance) or surcharge (charge) states, at either level."""

    id: Mapped[int] = mapped_column(primary_key=True)
    is_charge: Mapped[bool]
    amount: Mapped[Decimal] = mapped_column(Money())
    base_amount: Mapped[Decimal | None] = mapped_column(Money())
    percentage: Mapped[Decimal | None] = mapped_column(Rate())
    reason: Mapped[str | None] = mapped_column(sa.String(200))
    reason_code: Mapped[str | None] = mapped_column(sa.String(10))  # UNCL5189 / UNCL7161


class AllowanceCharge(_AllowanceChargeColumns, Base):
    """A document-level allowance or charge; it carries its own VAT category and rate."""

    __tablename__ = "invoice_allowance_charges"

    invoice_id: Mapped[int] = mapped_column(
        sa.ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    vat_category: Mapped[str] = mapped_column(sa.String(2))
    vat_rate: Mapped[Decimal | None] = mapped_column(Rate())


class LineAllowanceCharge(_AllowanceChargeColumns, Base):
    """An allowance or charge on one invoice line; it takes the line's VAT."""

    __tablename__ = "line_allowance_charges"

    line_id: Mapped[int] = mapped_column(
        sa.ForeignKey("invoice_lines.id", ondelete="CASCADE"), index=True
    )
