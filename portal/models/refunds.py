"""Refund and credit requests: a caller asks for money back or a credit, finance decides."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, Money, UTCDateTime, enum_column, utcnow
from portal.models.customers import Customer
from portal.models.invoices import Invoice


class RefundKind(enum.StrEnum):
    REFUND = "refund"  # money goes back to the customer
    CREDIT = "credit"  # the billing system issues a credit note


class RefundStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class RefundRequest(Base):
    """A refund or credit asked for on one invoice, with the caller's context.

    ``reason`` is masked before storage. ``context`` holds where the request came
    from (call ID, agent, CRM record, ticket). Requests at or under the configured
    limit are approved when made (``auto_approved``); the others wait for a finance
    approver. An approved refund points to the refund payment it recorded.
    """

    __tablename__ = "refund_requests"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.Index("ix_refund_requests_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    kind: Mapped[RefundKind] = mapped_column(enum_column(RefundKind, 16))
    status: Mapped[RefundStatus] = mapped_column(enum_column(RefundStatus, 16))
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(sa.String(3))
    reason: Mapped[str] = mapped_column(sa.Text)  # card numbers, IBANs, tax IDs masked
    context: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    requested_by: Mapped[str] = mapped_column(sa.String(200))
    auto_approved: Mapped[bool] = mapped_column(default=False)
    decided_by: Mapped[str | None] = mapped_column(sa.String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(sa.Text)
    payment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payments.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    invoice: Mapped[Invoice] = relationship()
    customer: Mapped[Customer] = relationship()
