"""Customers, the people at them we write to, and their accounts or contracts."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, UTCDateTime, enum_column, utcnow


class CustomerKind(enum.StrEnum):
    CONSUMER = "consumer"
    BUSINESS = "business"


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class Customer(Base):
    """Someone a seller bills: a consumer or a business."""

    __tablename__ = "customers"
    __table_args__ = (sa.UniqueConstraint("organisation_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    number: Mapped[str] = mapped_column(sa.String(40))
    kind: Mapped[CustomerKind] = mapped_column(enum_column(CustomerKind))
    name: Mapped[str] = mapped_column(sa.String(200))
    language: Mapped[str] = mapped_column(sa.String(8), default="en")
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="Europe/Brussels")
    address_line1: Mapped[str | None] = mapped_column(sa.String(200))
    address_line2: Mapped[str | None] = mapped_column(sa.String(200))
    city: Mapped[str | None] = mapped_column(sa.String(100))
    postal_code: Mapped[str | None] = mapped_column(sa.String(20))
    country_subdivision: Mapped[str | None] = mapped_column(sa.String(100))
    country_code: Mapped[str | None] = mapped_column(sa.String(2))
    vat_id: Mapped[str | None] = mapped_column(sa.String(32))
    legal_registration_id: Mapped[str | None] = mapped_column(sa.String(64))
    peppol_endpoint_id: Mapped[str | None] = mapped_column(sa.String(64))
    peppol_endpoint_scheme: Mapped[str | None] = mapped_column(sa.String(4))
    embed_pdf_in_ubl: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="Contact.id"
    )
    accounts: Mapped[list[Account]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="Account.id"
    )

    @property
    def primary_email(self) -> str | None:
        """The email of the primary contact, else of the first contact that has one."""
        for contact in sorted(self.contacts, key=lambda c: not c.is_primary):
            if contact.email:
                return contact.email
        return None

    def __repr__(self) -> str:
        return f"<Customer {self.number} {self.name!r}>"


class Contact(Base):
    """A person at a customer, with the email address and phone number we may use."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str | None] = mapped_column(sa.String(200))
    role: Mapped[str | None] = mapped_column(sa.String(60))
    email: Mapped[str | None] = mapped_column(sa.String(254), index=True)
    phone: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    is_primary: Mapped[bool] = mapped_column(default=False)

    customer: Mapped[Customer] = relationship(back_populates="contacts")


class Account(Base):
    """An account or contract a customer is billed under (a line, a meter, a subscription)."""

    __tablename__ = "accounts"
    __table_args__ = (sa.UniqueConstraint("organisation_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    customer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[str] = mapped_column(sa.String(40))
    description: Mapped[str | None] = mapped_column(sa.String(200))
    status: Mapped[AccountStatus] = mapped_column(
        enum_column(AccountStatus), default=AccountStatus.ACTIVE
    )
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]

    customer: Mapped[Customer] = relationship(back_populates="accounts")
