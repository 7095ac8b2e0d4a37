""""Review & pay" links, the requests for fresh ones, and the provider events already handled."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, UTCDateTime, utcnow
from portal.models.invoices import Invoice


class PayLink(Base):
    """A bearer link that opens one invoice for viewing and paying, until it expires.

    Only the SHA-256 of the token is kept, so a reader of the database cannot
    open invoices with what is stored here.
    """

    __tablename__ = "pay_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        sa.ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    purpose: Mapped[str] = mapped_column(sa.String(16))  # message, recovery, operator
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(200))
    last_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    invoice: Mapped[Invoice] = relationship()


class PayLinkRequest(Base):
    """Someone asked for a fresh link on the recovery page (kept for rate limiting)."""

    __tablename__ = "pay_link_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the client's address: enough to count requests, not to track people.
    client_sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    matched: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ProcessedProviderEvent(Base):
    """A payment provider's webhook event that has been handled: a replay is ignored."""

    __tablename__ = "processed_provider_events"
    __table_args__ = (sa.UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(32))
    event_id: Mapped[str] = mapped_column(sa.String(128))
    event_type: Mapped[str] = mapped_column(sa.String(64))
    outcome: Mapped[str] = mapped_column(sa.String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
