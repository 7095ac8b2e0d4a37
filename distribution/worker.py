"""The task engine (Huey): which queue backend to use, and the tasks distribution runs.

The database is the truth and Huey only transport (ARCHITECTURE.md, decision 2),
so tasks are enqueued after the transaction that justifies them commits, and a
task run twice does no harm.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from huey import Huey, PriorityRedisHuey, SqliteHuey, crontab
from huey.api import PeriodicTask, TaskWrapper
from huey.storage import RedisStorage, SqliteStorage
from sqlalchemy.orm import Session, sessionmaker

from distribution.models import WorkerHeartbeat
from distribution.sending import Sender
from distribution.sqltypes import utcnow

QUEUE_NAME = "herald"
log = logging.getLogger(__name__)


class QueueConfigError(ValueError):
    """``HUEY_URL`` names a backend Herald cannot use."""


# Higher runs first (SQLite and Redis queues both honour it): a send never waits behind
# thousands of queued PDF renders; bulk work uses BULK_PRIORITY.
SEND_PRIORITY = 100
BULK_PRIORITY = 0


# Periodic tasks every worker schedules for itself: a heartbeat per scheduler is the
# point (the metrics list each live worker), and one more costs one row update.
PER_WORKER_PERIODIC = frozenset({"heartbeat"})
# How long a period's claim is remembered: far longer than any two schedulers of one
# deployment can disagree about the minute, short enough that Redis forgets on its own.
PERIOD_CLAIM_SECONDS = 3600


def period_claim_key(queue: str, task_name: str, timestamp: datetime) -> str:
    """The storage key that says ``task_name``'s run for the minute of ``timestamp`` is taken.

    The minute is the period: crontab schedules cannot be finer, and each worker's
    scheduler checks once a minute at its own second, so all of them agree on it.
    """
    return f"herald.periodic.{queue}.{task_name}.{timestamp:%Y%m%d%H%M}"


def claim_period(huey: Huey, task_name: str, timestamp: datetime) -> bool:
    """Take ``task_name``'s run for this minute; False when another scheduler took it first.

    The claim lives in the queue's own storage, which every worker of a deployment
    shares (they consume the same queue), and is one atomic write: ``SET NX`` with an
    expiry on Redis, ``INSERT OR ABORT`` on SQLite (older claims are deleted there,
    as SQLite has no expiry).
    """
    key = period_claim_key(huey.name, task_name, timestamp)
    storage = huey.storage
    if isinstance(storage, RedisStorage):
        return bool(storage.conn.set(key, b"1", nx=True, ex=PERIOD_CLAIM_SECONDS))
    taken = storage.put_if_empty(key, b"1")
    if taken and isinstance(storage, SqliteStorage):
        # Keys of one task sort by minute; the ones before this one can never be asked again.
        prefix = key[:key.rindex(".") + 1]
        storage.sql("delete from kv where queue = ? and substr(key, 1, ?) = ? and key < ?",
                    (storage.name, len(prefix), prefix, key), commit=True)
    return taken


class OncePerPeriod:
    """Huey mixin: each periodic task is enqueued once per period however many workers run.

    Every ``herald worker`` runs Huey's scheduler, which asks :meth:`read_periodic`
    once a minute what is due and enqueues it; without this each worker would add its
    own copy. A task other than those in :data:`PER_WORKER_PERIODIC` is handed over
    only to the scheduler that claims its period first (:func:`claim_period`).
    """

    def read_periodic(self, timestamp: datetime | None) -> list[PeriodicTask]:
        """The periodic tasks due at ``timestamp`` that this scheduler is to enqueue."""
        if timestamp is None:
            timestamp = self._get_timestamp()
        due = super().read_periodic(timestamp)
        return [task for task in due
                if task.name in PER_WORKER_PERIODIC or self._claim(task.name, timestamp)]

    def _claim(self, task_name: str, timestamp: datetime) -> bool:
        try:
            return claim_period(self, task_name, timestamp)
        except Exception:
            # The queue's storage is unreachable, so enqueueing would fail too. Huey's
            # scheduler would die of the error; skipping keeps it alive for the next minute.
            log.exception("could not claim this minute's run of periodic task %s; skipped",
                          task_name)
            return False


class HeraldSqliteHuey(OncePerPeriod, SqliteHuey):
    """The SQLite queue, with periodic tasks once per period."""


class HeraldRedisHuey(OncePerPeriod, PriorityRedisHuey):
    """The Redis priority queue, with periodic tasks once per period."""


def make_huey(huey_url: str | None, instance_path: Path, *, immediate: bool = False) -> Huey:
    """The queue named by ``huey_url``: ``redis://...`` or ``sqlite:///path``.

    Without a URL the queue is one SQLite file in the instance folder, which needs
    no server: the embedded default. Either way, periodic tasks are scheduled once
    per period across all the workers sharing the queue (:class:`OncePerPeriod`).
    """
    if huey_url is None:
        return HeraldSqliteHuey(QUEUE_NAME, filename=str(instance_path / "tasks.sqlite3"),
                                immediate=immediate)
    if huey_url.startswith(("redis://", "rediss://", "unix://")):
        # The priority flavour: sends overtake bulk work (PDF rendering) queued before them.
        return HeraldRedisHuey(QUEUE_NAME, url=huey_url, immediate=immediate)
    if huey_url.startswith("sqlite:///"):
        return HeraldSqliteHuey(QUEUE_NAME, filename=huey_url.removeprefix("sqlite:///"),
                                immediate=immediate)
    raise QueueConfigError(
        f"HUEY_URL={huey_url!r} is not supported; use redis://host:6379/0 or "
        "sqlite:///path/to/tasks.sqlite3, or unset it for the embedded queue"
    )


def worker_name() -> str:
    """This process's name in the heartbeat table: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def record_heartbeat(session: Session, worker: str) -> WorkerHeartbeat:
    """Note that ``worker`` is alive and has just run a task."""
    beat = session.get(WorkerHeartbeat, worker)
    now = utcnow()
    if beat is None:
        beat = WorkerHeartbeat(worker=worker, started_at=now, last_seen_at=now, tasks_run=0)
        session.add(beat)
    beat.last_seen_at = now
    beat.tasks_run += 1
    return beat


def latest_heartbeat(session: Session) -> WorkerHeartbeat | None:
    """The most recently seen worker, or None when no worker has ever run."""
    return session.scalars(
        sa.select(WorkerHeartbeat).order_by(WorkerHeartbeat.last_seen_at.desc()).limit(1)
    ).first()


@dataclass(frozen=True, slots=True)
class Tasks:
    """Handles of the tasks registered on one Huey instance."""

    heartbeat: TaskWrapper
    send: TaskWrapper
    send_batch: TaskWrapper


def register_tasks(huey: Huey, make_session: sessionmaker[Session],
                   make_sender: Callable[[], Sender] | None = None) -> Tasks:
    """Register distribution's tasks on ``huey``; they open their own sessions.

    ``make_sender`` builds the channels once per worker process, on the first
    send, so that a web process that only enqueues never opens SMTP connections.
    """
    senders: list[Sender] = []
    lock = threading.Lock()

    def sender() -> Sender:
        with lock:
            if not senders:
                if make_sender is None:
                    raise RuntimeError("this queue was set up without channels")
                senders.append(make_sender())
            return senders[0]

    @huey.periodic_task(crontab(minute="*"), name="heartbeat")
    def heartbeat() -> None:
        try:
            with make_session() as session, session.begin():
                record_heartbeat(session, worker_name())
        except sa.exc.IntegrityError:
            # A new worker's first two heartbeats (the one it sends itself at start and the
            # periodic one) can race to insert its row; the loser updates the winner's row.
            with make_session() as session, session.begin():
                record_heartbeat(session, worker_name())

    # No Huey retries: the database decides (retryable errors go back to pending with a
    # backoff, and the reconciler recovers what a crashed worker left behind).
    @huey.task(name="send", retries=0, priority=SEND_PRIORITY)
    def send(delivery_id: int) -> str | None:
        state = sender().send(delivery_id)
        return state.value if state else None

    # What the dispatcher enqueues: about a hundred ids, claimed in one transaction.
    @huey.task(name="send_batch", retries=0, priority=SEND_PRIORITY)
    def send_batch(delivery_ids: list[int]) -> dict[int, str | None]:
        states = sender().send_batch(delivery_ids)
        return {delivery_id: state.value if state else None
                for delivery_id, state in states.items()}

    return Tasks(heartbeat=heartbeat, send=send, send_batch=send_batch)
