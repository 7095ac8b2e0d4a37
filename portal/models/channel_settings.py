"""Email addresses a customer added in the portal, waiting for or past verification.

An address is used for sending only once its owner has followed the link we
emailed; until then it lives here and not among distribution's addresses,
because the engine would otherwise use it. A row also remembers that the
customer removed an address, so the next sync from the billing system's
contacts does not bring it back.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, UTCDateTime, utcnow


class CustomerEmailAddress(Base):
    """One email address a customer manages: pending, verified or removed."""

    __tablename__ = "customer_email_addresses"
    __table_args__ = (sa.UniqueConstraint("customer_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    # Only the SHA-256 of the emailed token is kept: a database reader cannot verify.
    token_sha256: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verification_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def pending(self) -> bool:
        """Added, not yet verified, not removed."""
        return self.verified_at is None and self.removed_at is None
