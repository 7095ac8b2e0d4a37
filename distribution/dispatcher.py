"""The dispatcher: releases pending deliveries of running waves at their rate.

One dispatcher runs at a time (on PostgreSQL it holds an advisory lock; embedded
it runs in the app process). Each tick, for each running wave inside its send
window, it takes tokens from the wave's bucket (reading the clock after the
bucket row is locked), claims that many pending deliveries (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; SQLite serialises writers), marks them released with a
lease and commits; only then are their send tasks enqueued, in batches cut by
:func:`send_batches` when an ``enqueue_batch`` is given (one task per batch spares
the queue and the worker a round trip per delivery), else one id per task.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from distribution.deliveries import Delivery, DeliveryState, Message, delivery_key, transition
from distribution.events import NewEvent, record_event, record_events
from distribution.feedback import steer_wave
from distribution.recipients import Recipient
from distribution.runs import planned_rate_per_minute, start_wave
from distribution.sqltypes import utcnow
from distribution.waves import Run, TokenBucket, Wave, WaveState

log = logging.getLogger(__name__)

RELEASE_LEASE = timedelta(minutes=5)
ADVISORY_LOCK_ID = 0x48455241  # "HERA"
# Deliveries one wave releases in one tick: bounds the transaction (the bucket's burst,
# two seconds at the wave's rate, usually bounds it first).
MAX_BATCH = 10_000
# Delivery ids per send task: SEND_BATCH when a tick releases few, more when it releases
# many (at least SEND_TASKS_PER_TICK tasks, to keep every worker busy, of at most
# SEND_BATCH_MAX ids): each task has a fixed cost (two transactions, a dozen statements).
SEND_BATCH = 100
SEND_BATCH_MAX = 500
SEND_TASKS_PER_TICK = 8
ACTOR = "dispatcher"


@dataclass
class TickResult:
    """What one tick did."""

    released: dict[int, list[int]] = field(default_factory=dict)  # wave id -> delivery ids
    finished: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        """How many deliveries were released."""
        return sum(len(ids) for ids in self.released.values())


def open_time_zones(session: Session, wave: Wave, now: datetime) -> list[str]:
    """Time zones of the wave's waiting recipients in which its window is open now."""
    zones = session.scalars(
        sa.select(Recipient.time_zone).distinct()
        .join(Message, Message.recipient_id == Recipient.id)
        .join(Delivery, Delivery.message_id == Message.id)
        .where(Delivery.wave_id == wave.id, Delivery.state == DeliveryState.PENDING)
    ).all()
    return [zone for zone in zones if wave.window_open(now, zone)]


def _take_tokens(session: Session, wave: Wave) -> tuple[int, datetime]:
    bucket = session.scalars(sa.select(TokenBucket).where(TokenBucket.wave_id == wave.id)
                             .with_for_update()).first()
    now = utcnow()  # read after the lock is held, so two ticks cannot both count the same time
    rate = planned_rate_per_minute(wave, now)  # the capacity plan's hour, else the fixed rate
    if bucket is None:
        bucket = TokenBucket(wave_id=wave.id, tokens=0.0, burst=_burst(rate), refilled_at=now)
        session.add(bucket)
    elapsed = max((now - bucket.refilled_at).total_seconds(), 0.0)
    # The cap follows the current rate (start_wave and set_rate do not know the burst).
    bucket.burst = _burst(rate)
    bucket.tokens = min(bucket.burst, bucket.tokens + elapsed * rate / 60.0)
    bucket.refilled_at = now
    return math.floor(bucket.tokens), now


def _burst(rate_per_minute: float) -> float:
    # At most two seconds' worth at once, and at least one, so the rate stays smooth.
    return max(1.0, rate_per_minute / 30.0)


def release_wave(session: Session, wave: Wave, *,
                 lease: timedelta = RELEASE_LEASE) -> list[int]:
    """Release what the wave's bucket allows now; returns the released delivery ids.

    ``lease`` is how long a released delivery may wait for its send task before the
    reconciler puts it back to pending.
    """
    available, now = _take_tokens(session, wave)
    if available <= 0:
        return []
    zones = open_time_zones(session, wave, now)
    if not zones:
        return []
    query = (
        sa.select(Delivery.id)
        .join(Message, Message.id == Delivery.message_id)
        .join(Recipient, Recipient.id == Message.recipient_id)
        .where(Delivery.wave_id == wave.id, Delivery.state == DeliveryState.PENDING,
               Recipient.time_zone.in_(zones),
               sa.or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now))
        .order_by(Delivery.id)
        .limit(min(available, MAX_BATCH))
    )
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Delivery)
    # One statement: the ids chosen never travel to this process and back. The choice is
    # a materialised CTE, taken once: as a subquery, PostgreSQL may run a LIMIT ... SKIP
    # LOCKED again and release more than the bucket allows. Conditional all the same
    # (the rows changed decide, never the select inside).
    chosen = query.cte("chosen").prefix_with("MATERIALIZED", dialect="postgresql")
    ids = sorted(session.scalars(
        sa.update(Delivery).where(Delivery.id.in_(sa.select(chosen.c.id)),
                                  Delivery.state == DeliveryState.PENDING)
        .values(state=DeliveryState.RELEASED, lease_until=now + lease, updated_at=now)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)))
    if not ids:
        return []
    bucket = session.get(TokenBucket, wave.id)
    bucket.tokens -= len(ids)
    payload = {"wave_id": wave.id}  # one object for all: record_events encodes it once
    record_events(session, [NewEvent("delivery", delivery_key(delivery_id), "delivery.released",
                                     payload, ACTOR) for delivery_id in ids])
    return ids


def _finish_if_done(session: Session, wave: Wave) -> bool:
    open_states = (DeliveryState.PENDING, DeliveryState.RELEASED, DeliveryState.SENDING,
                   DeliveryState.IN_DOUBT)
    left = session.scalar(sa.select(sa.func.count()).select_from(Delivery).where(
        Delivery.wave_id == wave.id, Delivery.state.in_(open_states)))
    if left:
        return False
    wave.state = WaveState.DONE
    wave.finished_at = utcnow()
    record_event(session, "wave", str(wave.id), "wave.done", {}, actor=ACTOR)
    _continue_run(session, wave)
    return True


def _continue_run(session: Session, wave: Wave) -> None:
    """Start the run's next draft wave, when the run continues by itself."""
    run = session.get(Run, wave.run_id)
    if run is None or not run.auto_continue:
        return
    following = session.scalars(sa.select(Wave.id).where(
        Wave.run_id == run.id, Wave.state == WaveState.DRAFT, Wave.sequence > wave.sequence)
        .order_by(Wave.sequence).limit(1)).first()
    if following is not None:
        start_wave(session, following, actor=ACTOR, after_wave=wave.id)


def send_batches(ids: list[int], batch_size: int | None = None) -> list[list[int]]:
    """``ids`` cut into send tasks: of ``batch_size`` each, or sized by how many there are.

    Without ``batch_size``: batches of :data:`SEND_BATCH`, larger (up to
    :data:`SEND_BATCH_MAX`) when there are enough for :data:`SEND_TASKS_PER_TICK` tasks,
    and of nearly equal sizes.
    """
    if not ids:
        return []
    if batch_size is None:
        size = min(SEND_BATCH_MAX, max(SEND_BATCH, math.ceil(len(ids) / SEND_TASKS_PER_TICK)))
        size = math.ceil(len(ids) / math.ceil(len(ids) / size))  # even out the last one
    else:
        size = batch_size
    return [ids[start:start + size] for start in range(0, len(ids), size)]


def tick(make_session: sessionmaker[Session], enqueue: Callable[[int], None], *,
         release_lease: timedelta = RELEASE_LEASE,
         enqueue_batch: Callable[[list[int]], None] | None = None,
         batch_size: int | None = None) -> TickResult:
    """One pass over the running waves; each wave in its own short transaction.

    Released ids go to ``enqueue_batch`` in lists cut by :func:`send_batches` when it
    is given, else one by one to ``enqueue``.
    """
    result = TickResult()
    with make_session() as session:
        wave_ids = list(session.scalars(sa.select(Wave.id).where(
            Wave.state == WaveState.RUNNING).order_by(Wave.id)))
    for wave_id in wave_ids:
        with make_session() as session, session.begin():
            wave = session.get(Wave, wave_id, with_for_update=True)
            if wave is None or wave.state is not WaveState.RUNNING:
                continue  # paused or cancelled since the list was read
            if steer_wave(session, wave, utcnow(), actor=ACTOR) == "paused":
                continue  # contacts far above forecast: the wave paused itself
            ids = release_wave(session, wave, lease=release_lease)
            if not ids and _finish_if_done(session, wave):
                result.finished.append(wave_id)
        if ids:
            result.released[wave_id] = ids
            # Only after commit: the database is the truth.
            _enqueue_or_return(make_session, ids, enqueue, enqueue_batch, batch_size)
    return result


def _enqueue_or_return(make_session: sessionmaker[Session], ids: list[int],
                       enqueue: Callable[[int], None],
                       enqueue_batch: Callable[[list[int]], None] | None,
                       batch_size: int | None) -> None:
    """Enqueue the send tasks of ``ids``; when the task queue refuses, put back the rest.

    Without this, deliveries released while the queue (Redis) is down would sit out
    their release lease before the reconciler returns them. Returning them at once is
    safe even if a refused push did reach the queue: a send task only claims deliveries
    still ``released``, and one released again later is claimed by one task only.
    """
    batches = (send_batches(ids, batch_size) if enqueue_batch is not None
               else [[delivery_id] for delivery_id in ids])
    for done, batch in enumerate(batches):
        try:
            if enqueue_batch is not None:
                enqueue_batch(batch)
            else:
                enqueue(batch[0])
        except Exception as error:
            left = [delivery_id for rest in batches[done:] for delivery_id in rest]
            with make_session() as session, session.begin():
                for delivery_id in left:
                    transition(session, delivery_id, DeliveryState.RELEASED,
                               DeliveryState.PENDING, event="delivery.enqueue_failed",
                               actor=ACTOR, lease_until=None,
                               payload={"why": "the task queue refused its send task",
                                        "error": type(error).__name__})
            raise


class DispatcherLock:
    """Makes sure one dispatcher is active among all those started.

    On PostgreSQL it is an advisory lock held on a connection of its own. On SQLite
    (one database file on one machine) it is an exclusive ``flock`` on a file beside
    the database (``<database>.dispatcher.lock``): the kernel drops it when the
    process holding it ends, however it ends, so a waiting dispatcher (another
    ``herald dispatcher``, or the one of ``herald demo``) takes over at its next
    tick. An in-memory SQLite database belongs to one process: always granted.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.connection: sa.Connection | None = None
        self.lock_file: int | None = None
        self.lock_path = _sqlite_lock_path(engine)
        self.held = engine.dialect.name != "postgresql" and self.lock_path is None

    def ensure(self) -> bool:
        """Hold the lock: keep it if held and its connection lives, else try to take it."""
        if self.engine.dialect.name != "postgresql":
            return self._ensure_file_lock()
        try:
            if self.connection is None:
                self.connection = self.engine.connect()
            if self.held:
                # A restarted database drops the lock with the connection; find out.
                self.connection.scalar(sa.text("SELECT 1"))
            else:
                # Keyed by schema too: Herald installs (or test runs) in other schemas
                # of the same database each have their own active dispatcher.
                self.held = bool(self.connection.scalar(sa.text(
                    "SELECT pg_try_advisory_lock(:id, hashtext(current_schema()))"),
                    {"id": ADVISORY_LOCK_ID}))
            self.connection.commit()
        except sa.exc.DBAPIError:
            self.release()
        return self.held

    def _ensure_file_lock(self) -> bool:
        if self.lock_path is None or self.held:
            return True
        descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)  # another dispatcher holds it
            return False
        self.lock_file, self.held = descriptor, True
        return True

    def release(self) -> None:
        """Give the lock up: its database connection is really closed, not pooled.

        A session-level advisory lock lives as long as the database session; a
        connection returned to the pool would keep holding it, and no other
        dispatcher could ever take over.
        """
        self.held = self.engine.dialect.name != "postgresql" and self.lock_path is None
        if self.lock_file is not None:
            os.close(self.lock_file)  # closing the file drops the flock
            self.lock_file = None
        if self.connection is not None:
            with contextlib.suppress(sa.exc.DBAPIError):
                self.connection.invalidate()
            with contextlib.suppress(sa.exc.DBAPIError):
                self.connection.close()
            self.connection = None


def _sqlite_lock_path(engine: sa.Engine) -> str | None:
    """``<database file>.dispatcher.lock`` for a SQLite file database, else None."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}.dispatcher.lock"


def run_dispatcher(make_session: sessionmaker[Session], engine: sa.Engine,
                   enqueue: Callable[[int], None], *, interval: float = 1.0,
                   should_stop: Callable[[], bool] = lambda: False,
                   reconcile: Callable[[], object] | None = None,
                   reconcile_every: float = 60.0,
                   release_lease: timedelta = RELEASE_LEASE,
                   enqueue_batch: Callable[[list[int]], None] | None = None,
                   batch_size: int | None = None) -> None:
    """Tick every ``interval`` seconds while holding the dispatcher lock, until stopped.

    ``enqueue_batch`` and ``batch_size`` are :func:`tick`'s.
    """
    lock = DispatcherLock(engine)
    last_reconcile = -math.inf  # reconcile on the first tick (monotonic time may start low)
    active = False
    try:
        while not should_stop():
            if lock.ensure() != active:  # say so: operators need to know which one releases
                active = not active
                log.info("dispatcher lock %s", "taken; this dispatcher is active" if active
                         else "lost; waiting to take it again")
            if not active:
                time.sleep(interval)  # another dispatcher is active; wait to take over
                continue
            started = time.monotonic()
            try:
                tick(make_session, enqueue, release_lease=release_lease,
                     enqueue_batch=enqueue_batch, batch_size=batch_size)
                if reconcile and started - last_reconcile >= reconcile_every:
                    reconcile()
                    last_reconcile = started
            except Exception:  # a dispatcher must outlive any one tick
                # The database or the task queue restarting, most often. What the queue
                # refused went back to pending already; if the database was down too, it
                # goes back when its release lease expires.
                log.exception("dispatcher tick failed; retrying")
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        lock.release()
