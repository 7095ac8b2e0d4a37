"""The integration API's records: keys, rate windows, idempotency, customer app tokens, notes."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from distribution.sealing import SealedText
from portal.models.base import Base, UTCDateTime, utcnow


class ApiKey(Base):
    """A key an integration calls /api/v1 with; only its SHA-256 is kept.

    The key reads ``hk_<prefix>_<secret>``: the prefix finds the row, the digest of
    the whole key proves it. Scopes are stored space-separated.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16), unique=True)
    key_sha256: Mapped[str] = mapped_column(sa.String(64))
    scopes: Mapped[str] = mapped_column(sa.String(400))
    # Requests per rate window for this key; None: the installation's HERALD_API_RATE_LIMIT.
    rate_limit: Mapped[int | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def scope_set(self) -> frozenset[str]:
        """The key's scopes."""
        return frozenset(self.scopes.split())

    @property
    def actor(self) -> str:
        """How the event log names what this key did."""
        return f"api:{self.name}"


class ApiRateWindow(Base):
    """How many requests one key made in one fixed window (epoch seconds of its start)."""

    __tablename__ = "api_rate_windows"

    api_key_id: Mapped[int] = mapped_column(
        sa.ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    window_start: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True,
                                              autoincrement=False)
    count: Mapped[int] = mapped_column(default=0)


class IdempotencyRecord(Base):
    """One ``Idempotency-Key`` of one caller: claimed first, then the response it got.

    ``caller`` is ``key:<api key id>`` or ``customer:<user id>``. The row is inserted
    (and committed) before the request acts, so a second request with the same key
    finds it and waits or replays instead of acting again.
    """

    __tablename__ = "api_idempotency"
    __table_args__ = (sa.UniqueConstraint("caller", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    caller: Mapped[str] = mapped_column(sa.String(40))
    key: Mapped[str] = mapped_column(sa.String(255))
    request_sha256: Mapped[str] = mapped_column(sa.String(64))
    method: Mapped[str] = mapped_column(sa.String(8))
    path: Mapped[str] = mapped_column(sa.String(500))
    state: Mapped[str] = mapped_column(sa.String(16), default="in_progress")  # or "done"
    response_status: Mapped[int | None] = mapped_column()
    # Sealed at rest: a replayed answer may hold a secret shown once (a webhook endpoint's).
    response_body: Mapped[str | None] = mapped_column(SealedText("idempotent response"))
    response_location: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CustomerApiToken(Base):
    """A customer's own token for the mobile app (``hct_<prefix>_<secret>``), hashed, expiring."""

    __tablename__ = "api_customer_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    prefix: Mapped[str] = mapped_column(sa.String(16), unique=True)
    token_sha256: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiNote(Base):
    """A short operational note on a customer (or one of their invoices) from an integration.

    ``summary`` is masked before it is stored; ``links`` hold references to where
    the conversation lives (transcript, recording, call ID, ticket, CRM record).
    A suppressed note is hidden from support agents' reads.
    """

    __tablename__ = "api_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    summary: Mapped[str] = mapped_column(sa.Text)
    links: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    suppressed: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
