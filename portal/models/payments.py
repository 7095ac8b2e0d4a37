"""Money received from (or refunded to) customers."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, Money, UTCDateTime, enum_column, utcnow
from portal.models.invoices import Invoice


class PaymentKind(enum.StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


class PaymentMethod(enum.StrEnum):
    BANK_TRANSFER = "bank_transfer"
    CARD = "card"
    DIRECT_DEBIT = "direct_debit"
    OTHER = "other"


class Payment(Base):
    """A payment or refund, matched to an invoice when its reference allows."""

    __tablename__ = "payments"
    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_reference"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    invoice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    kind: Mapped[PaymentKind] = mapped_column(enum_column(PaymentKind))
    method: Mapped[PaymentMethod] = mapped_column(enum_column(PaymentMethod))
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(sa.String(3))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reference: Mapped[str | None] = mapped_column(sa.String(140))
    provider: Mapped[str] = mapped_column(sa.String(32))  # bank, stripe, manual, demo
    provider_reference: Mapped[str] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    invoice: Mapped[Invoice | None] = relationship()

    @property
    def signed_amount(self) -> Decimal:
        """The amount as it counts towards the invoice: refunds are negative."""
        return -self.amount if self.kind is PaymentKind.REFUND else self.amount
