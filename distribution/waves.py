"""Runs and the waves they are released in, with their send windows and token buckets."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from distribution.models import Base
from distribution.sqltypes import UTCDateTime, enum_column, utcnow


class WaveState(enum.StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class Run(Base):
    """A batch of messages an operator (or the API) decided to send."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    message_type: Mapped[str] = mapped_column(sa.String(32))
    selection: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # the filter it was made from
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When a wave is done, the run's next draft wave starts by itself; an operator who
    # wants to look between waves turns this off and starts each wave.
    auto_continue: Mapped[bool] = mapped_column(default=True, server_default=sa.true())

    waves: Mapped[list[Wave]] = relationship(back_populates="run", order_by="Wave.sequence")


class Wave(Base):
    """Part of a run, released at a rate inside a send window."""

    __tablename__ = "waves"
    __table_args__ = (sa.UniqueConstraint("run_id", "sequence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id"), index=True)
    sequence: Mapped[int]
    state: Mapped[WaveState] = mapped_column(enum_column(WaveState, 16),
                                             default=WaveState.DRAFT, index=True)
    rate_per_minute: Mapped[float]
    # Send window, in each recipient's own time zone (or window_time_zone when set).
    window_start_hour: Mapped[int] = mapped_column(default=8)
    window_end_hour: Mapped[int] = mapped_column(default=20)
    weekdays: Mapped[list[int]] = mapped_column(sa.JSON, default=lambda: [0, 1, 2, 3, 4])
    holidays: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    window_time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    # Capacity planning inputs and their outcome (see distribution.planner).
    capacity_per_hour: Mapped[float | None]
    contact_rate: Mapped[float | None]
    decay: Mapped[list[float] | None] = mapped_column(sa.JSON)
    pause_multiple: Mapped[float] = mapped_column(default=2.0)
    plan: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    pause_reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    run: Mapped[Run] = relationship(back_populates="waves")

    def window_open(self, at: datetime, time_zone: str) -> bool:
        """True when ``at`` falls inside this wave's send window in ``time_zone``."""
        local = at.astimezone(ZoneInfo(self.window_time_zone or time_zone))
        if local.weekday() not in self.weekdays:
            return False
        if local.date().isoformat() in self.holidays:
            return False
        return self.window_start_hour <= local.hour < self.window_end_hour


class TokenBucket(Base):
    """How many releases a wave may make right now; refilled by elapsed time at its rate."""

    __tablename__ = "token_buckets"

    wave_id: Mapped[int] = mapped_column(sa.ForeignKey("waves.id", ondelete="CASCADE"),
                                         primary_key=True)
    tokens: Mapped[float] = mapped_column(default=0.0)
    burst: Mapped[float]
    refilled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactSource(enum.StrEnum):
    DISPUTE = "dispute"
    QUESTION = "question"
    CALL = "call"


class SupportContact(Base):
    """A customer contacting support about a message: the feedback that steers waves."""

    __tablename__ = "support_contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(sa.ForeignKey("recipients.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(sa.ForeignKey("messages.id"))
    wave_id: Mapped[int | None] = mapped_column(sa.ForeignKey("waves.id"), index=True)
    source: Mapped[ContactSource] = mapped_column(enum_column(ContactSource, 16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
