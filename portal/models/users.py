"""Sign-ins: customers' own logins and staff accounts."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from distribution.sealing import SealedString
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
    # Rotated on every password change or reset (the other sessions are ended at the same
    # time, see portal.auth.sessions); a sign-in waiting for its second factor then lapses.
    session_token: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Optional second factor (TOTP). The last accepted time step stops a code being replayed.
    totp_secret: Mapped[str | None] = mapped_column(SealedString(255, "totp"))  # sealed at rest
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_counter: Mapped[int | None] = mapped_column(sa.BigInteger)

    customer: Mapped[Customer | None] = relationship()

    @property
    def is_active(self) -> bool:  # Flask-Login asks this
        return self.active

    @property
    def is_staff(self) -> bool:
        """True for everyone who is not a customer."""
        return self.role is not Role.CUSTOMER

    @property
    def totp_enabled(self) -> bool:
        """True when sign-in asks for a TOTP code after the password."""
        return self.totp_enabled_at is not None and self.totp_secret is not None

    # Set by the sign-in code (a new session) or the user loader (the session in use).
    login_id = None  # str once set; not a column

    def get_id(self) -> str:
        """Flask-Login's id: the sign-in session ("<session id>:<secret>"), not the user.

        Ending that session row (or rotating ``session_token``, which ends them all)
        therefore signs the browser out.
        """
        if self.login_id is None:
            raise RuntimeError("no sign-in session: use portal.auth.sessions.start_session")
        return self.login_id
