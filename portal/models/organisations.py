"""The seller: the organisation that issues invoices and sends them through Herald."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, UTCDateTime, utcnow


class Organisation(Base):
    """A seller: legal identity, bank details, Peppol identity and branding."""

    __tablename__ = "organisations"
    __table_args__ = (
        sa.CheckConstraint("length(country_code) = 2", name="country_code_iso"),
        sa.CheckConstraint("length(default_currency) = 3", name="currency_iso"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    legal_name: Mapped[str] = mapped_column(sa.String(200))
    trading_name: Mapped[str | None] = mapped_column(sa.String(200))
    vat_id: Mapped[str | None] = mapped_column(sa.String(32), unique=True)
    legal_registration_id: Mapped[str | None] = mapped_column(sa.String(64))
    address_line1: Mapped[str] = mapped_column(sa.String(200))
    address_line2: Mapped[str | None] = mapped_column(sa.String(200))
    city: Mapped[str] = mapped_column(sa.String(100))
    postal_code: Mapped[str] = mapped_column(sa.String(20))
    country_subdivision: Mapped[str | None] = mapped_column(sa.String(100))
    country_code: Mapped[str] = mapped_column(sa.String(2))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    phone: Mapped[str | None] = mapped_column(sa.String(40))
    website: Mapped[str | None] = mapped_column(sa.String(200))
    iban: Mapped[str | None] = mapped_column(sa.String(34))
    bic: Mapped[str | None] = mapped_column(sa.String(11))
    peppol_endpoint_id: Mapped[str | None] = mapped_column(sa.String(64))
    peppol_endpoint_scheme: Mapped[str | None] = mapped_column(sa.String(4))
    default_currency: Mapped[str] = mapped_column(sa.String(3), default="EUR")
    logo: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    logo_mime_type: Mapped[str | None] = mapped_column(sa.String(40))
    primary_colour: Mapped[str] = mapped_column(sa.String(7), default="#1d4ed8")
    accent_colour: Mapped[str] = mapped_column(sa.String(7), default="#0f172a")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def display_name(self) -> str:
        """The name customers know the seller by."""
        return self.trading_name or self.legal_name

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.legal_name!r}>"
