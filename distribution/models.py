"""Distribution's own records, on a MetaData of its own: the portal links to them by key only."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from distribution.sqltypes import NAMING_CONVENTION, UTCDateTime, utcnow


class Base(DeclarativeBase):
    """Base class of distribution's records."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class WorkerHeartbeat(Base):
    """The last time each background worker process ran a task; shown by ``/healthz``."""

    __tablename__ = "worker_heartbeats"

    worker: Mapped[str] = mapped_column(sa.String(200), primary_key=True)  # host:pid
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    tasks_run: Mapped[int] = mapped_column(default=0)
