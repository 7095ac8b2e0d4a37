"""Organisation-wide defaults for sending: the send window, holidays and the retry policy.

One row (id 1), edited on the ops console's settings page. New runs start from
its window and holidays; workers build their retry policy from it when they start.
A missing row means Herald's built-in defaults (:data:`BUILT_IN`).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, UTCDateTime, utcnow

SINGLETON_ID = 1


class DeliveryDefaults(Base):
    """The one row of sending defaults."""

    __tablename__ = "delivery_defaults"
    __table_args__ = (
        sa.CheckConstraint("id = 1", name="single_row"),
        sa.CheckConstraint("window_start_hour >= 0 AND window_start_hour < window_end_hour "
                           "AND window_end_hour <= 24", name="window_hours"),
        sa.CheckConstraint("max_attempts >= 1", name="max_attempts_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False,
                                    default=SINGLETON_ID)
    window_start_hour: Mapped[int] = mapped_column(default=8)
    window_end_hour: Mapped[int] = mapped_column(default=20)
    weekends: Mapped[bool] = mapped_column(default=False)
    # ISO dates (2026-12-25) on which nothing is sent.
    holidays: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    # None: each customer's own time zone.
    window_time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    max_attempts: Mapped[int] = mapped_column(default=8)
    first_backoff_seconds: Mapped[int] = mapped_column(default=30)
    max_backoff_seconds: Mapped[int] = mapped_column(default=7200)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(sa.String(200))
