"""Sign-ins: customers' own logins and staff accounts."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, UTCDateTime, enum_column, utcnow
from portal.models.customers import Customer


class Role(enum.StrEnum):
    CUSTOMER = "customer"
    ADMIN = "admin"
    BILLING_OPERATOR = "billing_operator"
    FINANCE_APPROVER = "finance_approver"
    SUPPORT_AGENT = "support_agent"
    AUDITOR = "auditor"


class User(UserMixin, Base):
    """A person who signs in: a customer (linked to one customer record) or a staff member."""

    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(
            "(role = 'customer') = (customer_id IS NOT NULL)", name="customer_link_matches_role"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    password_hash: Mapped[str | None] = mapped_column(sa.String(200))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    # Rotated on password change so that every other session of this user ends.
    session_token: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    customer: Mapped[Customer | None] = relationship()

    @property
    def is_active(self) -> bool:  # Flask-Login asks this
        return self.active

    @property
    def is_staff(self) -> bool:
        """True for everyone who is not a customer."""
        return self.role is not Role.CUSTOMER

    def get_id(self) -> str:
        """Flask-Login's session id: user id plus session token, so rotation signs out."""
        return f"{self.id}:{self.session_token}"
