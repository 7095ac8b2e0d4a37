"""Sign-in security records: sessions (devices), emailed account tokens, attempts, recovery codes.

Tokens and recovery codes are stored only as SHA-256 digests: a copy of the
database gives nobody a working link or code.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, UTCDateTime, enum_column, utcnow
from portal.models.users import User


class SignInSession(Base):
    """One signed-in browser or device; Flask-Login's id names this row, so ending it signs out."""

    __tablename__ = "sign_in_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    # The browser holds "<id>:<secret>"; only the secret's digest is kept here.
    secret_sha256: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_reason: Mapped[str | None] = mapped_column(sa.String(40))
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))
    user_agent: Mapped[str | None] = mapped_column(sa.String(120))  # a summary, not the header
    method: Mapped[str] = mapped_column(sa.String(20))  # password, magic_link, invitation, ...
    # "Keep me signed in": no idle limit, and the longer absolute lifetime.
    remembered: Mapped[bool] = mapped_column(default=False)

    user: Mapped[User] = relationship()


class TokenPurpose(enum.StrEnum):
    MAGIC_LINK = "magic_link"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose, not a secret
    INVITATION = "invitation"
    REGISTRATION = "registration"


class AccountToken(Base):
    """A single-use emailed link (magic sign-in, password reset, invitation, registration).

    The row is created by the request without a token; the mail task makes the
    token, stores its digest and sends it, so no secret passes through the queue.
    """

    __tablename__ = "account_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[TokenPurpose] = mapped_column(enum_column(TokenPurpose))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    token_sha256: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(200))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class SignInAttempt(Base):
    """One attempt at a guarded step, kept to rate-limit by account and by client address."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        sa.Index("ix_sign_in_attempts_account_at", "account_key", "at"),
        sa.Index("ix_sign_in_attempts_ip_at", "ip_address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(sa.String(20))
    # SHA-256 of the normalised email (or "user:<id>"), so typed addresses are not kept.
    account_key: Mapped[str | None] = mapped_column(sa.String(64))
    ip_address: Mapped[str] = mapped_column(sa.String(45))
    succeeded: Mapped[bool] = mapped_column(default=False)


class RecoveryCode(Base):
    """A single-use code that stands in for a TOTP code; shown once, stored hashed."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    code_sha256: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
