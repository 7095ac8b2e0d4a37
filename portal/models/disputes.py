"""Disputes: a customer contests an invoice, or some of its lines, and follows the answer."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, Money, UTCDateTime, enum_column, utcnow
from portal.models.invoices import Invoice, InvoiceLine, InvoiceStatus


class DisputeStatus(enum.StrEnum):
    OPEN = "open"
    UNDER_REVIEW = "under_review"
    RESOLVED = "resolved"
    WITHDRAWN = "withdrawn"


ACTIVE_DISPUTE = (DisputeStatus.OPEN, DisputeStatus.UNDER_REVIEW)


class DisputeResolution(enum.StrEnum):
    ACCEPTED = "accepted"  # the seller agrees; a credit note or correction follows
    REJECTED = "rejected"  # the invoice stands; reminders resume


class DisputeReason(enum.StrEnum):
    WRONG_AMOUNT = "wrong_amount"
    NOT_RECEIVED = "not_received"
    NOT_ORDERED = "not_ordered"
    DUPLICATE = "duplicate"
    ALREADY_PAID = "already_paid"
    QUALITY = "quality"
    OTHER = "other"


class MessageAuthor(enum.StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"


class Dispute(Base):
    """One dispute about one invoice; the lines it concerns are in ``lines`` (none: all)."""

    __tablename__ = "disputes"
    __table_args__ = (
        sa.Index("ix_disputes_customer_created", "customer_id", "created_at"),
        sa.CheckConstraint("amount IS NULL OR amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"))
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    status: Mapped[DisputeStatus] = mapped_column(enum_column(DisputeStatus), index=True)
    reason: Mapped[DisputeReason] = mapped_column(enum_column(DisputeReason))
    description: Mapped[str] = mapped_column(sa.Text)  # payment details already masked
    amount: Mapped[Decimal | None] = mapped_column(Money())  # what the customer contests
    currency: Mapped[str] = mapped_column(sa.String(3))
    resolution: Mapped[DisputeResolution | None] = mapped_column(enum_column(DisputeResolution))
    resolution_text: Mapped[str | None] = mapped_column(sa.Text)
    # What the invoice was before it became disputed, so withdrawing or rejecting restores it.
    invoice_status_before: Mapped[InvoiceStatus] = mapped_column(enum_column(InvoiceStatus))
    opened_by_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    invoice: Mapped[Invoice] = relationship()
    lines: Mapped[list[DisputeLine]] = relationship(
        cascade="all, delete-orphan", order_by="DisputeLine.id")
    messages: Mapped[list[DisputeMessage]] = relationship(
        cascade="all, delete-orphan", order_by="DisputeMessage.id")

    @property
    def is_active(self) -> bool:
        """Open or under review: the customer waits for an answer, reminders wait too."""
        return self.status in ACTIVE_DISPUTE


class DisputeLine(Base):
    """An invoice line a dispute concerns."""

    __tablename__ = "dispute_lines"
    __table_args__ = (sa.UniqueConstraint("dispute_id", "invoice_line_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(sa.ForeignKey("disputes.id", ondelete="CASCADE"))
    invoice_line_id: Mapped[int] = mapped_column(sa.ForeignKey("invoice_lines.id"))

    invoice_line: Mapped[InvoiceLine] = relationship()


class DisputeMessage(Base):
    """One message in a dispute's thread, from the customer or from staff."""

    __tablename__ = "dispute_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(
        sa.ForeignKey("disputes.id", ondelete="CASCADE"), index=True)
    author: Mapped[MessageAuthor] = mapped_column(enum_column(MessageAuthor, 16))
    author_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(sa.Text)  # payment details already masked
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
