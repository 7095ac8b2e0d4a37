"""Outbound webhooks' records: endpoints, one delivery per (endpoint, event), its attempts.

They live in distribution (not the portal) because the sender, a worker task with
no Flask, reads and writes them; the portal's API and ops pages manage them.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from distribution.models import Base
from distribution.sealing import SealedString
from distribution.sqltypes import UTCDateTime, enum_column, utcnow


class WebhookFormat(enum.StrEnum):
    """What a delivery's body looks like."""

    HERALD = "herald"  # the signed JSON event
    SLACK = "slack"  # a Slack-compatible incoming webhook: {"text": "..."}


class WebhookDeliveryState(enum.StrEnum):
    """Where one delivery stands."""

    PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
    SENDING = "sending"  # claimed by a worker until lease_until
    SUCCEEDED = "succeeded"  # the receiver answered 2xx
    FAILED = "failed"  # retried for the whole retry period; replay sends it again
    CANCELLED = "cancelled"  # its endpoint was disabled before it was sent


class WebhookEndpoint(Base):
    """A URL that receives the events of the types it subscribed to.

    ``secret`` signs every delivery (HMAC-SHA256). It is kept as is because the
    signature is symmetric: Herald must hold the very key the receiver checks with.
    It is shown once when the endpoint is created and never logged or listed.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(500))
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    event_types: Mapped[list[str]] = mapped_column(sa.JSON)
    format: Mapped[WebhookFormat] = mapped_column(enum_column(WebhookFormat, 16),
                                                  default=WebhookFormat.HERALD)
    secret: Mapped[str] = mapped_column(SealedString(255, "webhook"))  # sealed at rest
    enabled: Mapped[bool] = mapped_column(default=True)
    # Events up to this id were logged before the endpoint existed: it gets only later ones.
    after_event_id: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event for one endpoint; the body is frozen when the delivery is made."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The backstop against doubles: an event reaches an endpoint through one row only.
        sa.UniqueConstraint("endpoint_id", "event_id"),
        sa.Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(sa.BigInteger)
    event_type: Mapped[str] = mapped_column(sa.String(64))
    body: Mapped[str] = mapped_column(sa.Text)
    state: Mapped[WebhookDeliveryState] = mapped_column(
        enum_column(WebhookDeliveryState, 16), default=WebhookDeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the current series of attempts began (creation, or the last replay): retries stop
    # once the retry period has passed since then.
    series_started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """One HTTP request made for a delivery, and what came back."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column()  # None: no answer (refused, timeout)
    duration_ms: Mapped[int] = mapped_column()
    error: Mapped[str | None] = mapped_column(sa.String(500))
    replay: Mapped[bool] = mapped_column(default=False)


class WebhookCursor(Base):
    """The single row saying up to which event id the log has been turned into deliveries."""

    __tablename__ = "webhook_cursor"
    __table_args__ = (sa.CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_event_id: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
