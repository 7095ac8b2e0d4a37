"""A legal hold: while active, nothing of the held customer or invoice is deleted or erased."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, UTCDateTime, utcnow


class LegalHold(Base):
    """A hold on one customer (everything of theirs) or one invoice, with why and by whom."""

    __tablename__ = "legal_holds"
    __table_args__ = (
        sa.CheckConstraint("(customer_id IS NULL) != (invoice_id IS NULL)",
                           name="one_subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    reason: Mapped[str] = mapped_column(sa.String(500))
    placed_by: Mapped[str] = mapped_column(sa.String(200))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_by: Mapped[str | None] = mapped_column(sa.String(200))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
