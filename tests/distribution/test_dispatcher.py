"""The dispatcher: token bucket, send windows, wave states, retries, enqueue after commit,
concurrent ticks, and the one-dispatcher lock. Runs on a database of the test's own,
because ``tick`` commits."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from distribution import dispatcher
from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, DeliveryState
from distribution.dispatcher import RELEASE_LEASE, DispatcherLock, run_dispatcher, tick
from distribution.events import Event, events_for, verify_chain
from distribution.preferences import set_preference
from distribution.runs import MessageSpec, cancel_wave, create_run, pause_wave, start_wave
from distribution.runs import WaveOptions as Options
from distribution.waves import TokenBucket, Wave, WaveState
from tests.conftest import on_postgres
from tests.distribution.conftest import (
    MONDAY_NOON,
    Clock,
    deliveries_of,
    make_recipient,
    set_state,
    spec,
)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """The dispatcher's clock, frozen at Monday noon UTC until advanced."""
    frozen = Clock(MONDAY_NOON)
    monkeypatch.setattr(dispatcher, "utcnow", frozen)
    return frozen


def make_wave(make_session, recipients: dict[str, str], *, per_recipient: int = 1,
              start: bool = True, clock: Clock | None = None, **options) -> int:
    """A wave of email deliveries to recipients {key: time zone}; started unless told not."""
    with make_session() as session, session.begin():
        specs: list[MessageSpec] = []
        for key, zone in recipients.items():
            recipient = make_recipient(session, key, time_zone=zone, email=f"{key}@example.com")
            set_preference(session, recipient, "invoice", [ChannelName.EMAIL])
            specs += [spec(key, subject=f"invoice:{key}:{i}") for i in range(per_recipient)]
        summary = create_run(session, name="run", message_type="invoice", specs=specs,
                             selection={}, created_by="ops", options=Options(**options))
        wave_id = summary.run.waves[0].id
        if start:
            start_wave(session, wave_id, actor="ops")
            session.flush()
            if clock is not None:
                session.get(TokenBucket, wave_id).refilled_at = clock.now
    return wave_id


def released_count(make_session, wave_id: int) -> int:
    with make_session() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Delivery).where(
            Delivery.wave_id == wave_id, Delivery.state == DeliveryState.RELEASED))


def test_token_bucket_releases_rate_times_elapsed_capped_at_burst(own_db, clock):
    # 600 a minute is 10 a second; the burst is two seconds' worth (20).
    wave_id = make_wave(own_db, {"a": "Europe/Brussels"}, per_recipient=40,
                        rate_per_minute=600, clock=clock)
    enqueued: list[int] = []

    assert tick(own_db, enqueued.append).total == 0  # no time has passed
    clock.advance(1)
    assert tick(own_db, enqueued.append).total == 10
    clock.advance(0.25)
    assert tick(own_db, enqueued.append).total == 2  # 2.5 tokens: 0.5 kept
    clock.advance(0.25)
    assert tick(own_db, enqueued.append).total == 3  # 0.5 + 2.5
    clock.advance(100)
    assert tick(own_db, enqueued.append).total == 20  # capped at the burst

    assert len(enqueued) == len(set(enqueued)) == 35
    assert released_count(own_db, wave_id) == 35
    with own_db() as session:
        released = deliveries_of(session, state=DeliveryState.RELEASED)
        assert sorted(d.id for d in released) == sorted(enqueued)
        assert {d.lease_until for d in released[-20:]} == {clock.now + RELEASE_LEASE}
        kinds = [e.kind for e in events_for(session, "delivery", str(enqueued[0]))]
        assert kinds == ["delivery.planned", "delivery.released"]


def test_a_new_rate_applies_at_the_next_tick(own_db, clock):
    wave_id = make_wave(own_db, {"a": "Europe/Brussels"}, per_recipient=30,
                        rate_per_minute=60, clock=clock)
    clock.advance(1)
    assert tick(own_db, lambda _id: None).total == 1
    with own_db() as session, session.begin():
        from distribution.runs import set_rate
        set_rate(session, wave_id, 600, actor="ops")
    clock.advance(1)
    assert tick(own_db, lambda _id: None).total == 10


def test_only_recipients_inside_their_window_are_released(own_db, clock):
    # Monday 12:00 UTC: 13:00 in Brussels, 21:00 in Tokyo (the window is 8 to 20).
    make_wave(own_db, {"brussels": "Europe/Brussels", "tokyo": "Asia/Tokyo"},
              per_recipient=3, rate_per_minute=600, clock=clock)
    clock.advance(10)
    result = tick(own_db, lambda _id: None)

    with own_db() as session:
        released = deliveries_of(session, state=DeliveryState.RELEASED)
        assert result.total == 3
        assert {d.message.recipient.recipient_key for d in released} == {"brussels"}
        assert {d.message.recipient.recipient_key
                for d in deliveries_of(session, state=DeliveryState.PENDING)} == {"tokyo"}


@pytest.mark.parametrize(("when", "options"), [
    (MONDAY_NOON + timedelta(days=5), {}),  # Saturday
    (MONDAY_NOON, {"holidays": ("2026-11-23",)}),
    (MONDAY_NOON, {"window_time_zone": "Asia/Tokyo"}),  # 21:00 there, for everyone
    (MONDAY_NOON.replace(hour=6), {}),  # 07:00 in Brussels
    (MONDAY_NOON.replace(hour=19), {}),  # 20:00 in Brussels: the end hour is excluded
])
def test_nothing_is_released_outside_the_window(own_db, clock, when, options):
    clock.now = when
    wave_id = make_wave(own_db, {"a": "Europe/Brussels"}, per_recipient=3,
                        rate_per_minute=600, clock=clock, **options)
    clock.advance(10)
    assert tick(own_db, lambda _id: None).total == 0
    assert released_count(own_db, wave_id) == 0


def test_only_running_waves_release(own_db, clock):
    draft = make_wave(own_db, {"d": "Europe/Brussels"}, start=False, rate_per_minute=600)
    paused = make_wave(own_db, {"p": "Europe/Brussels"}, rate_per_minute=600, clock=clock)
    cancelled = make_wave(own_db, {"c": "Europe/Brussels"}, rate_per_minute=600, clock=clock)
    running = make_wave(own_db, {"r": "Europe/Brussels"}, rate_per_minute=600, clock=clock)
    with own_db() as session, session.begin():
        pause_wave(session, paused, actor="ops", reason="test")
        cancel_wave(session, cancelled, actor="ops", reason="test")
    clock.advance(10)

    result = tick(own_db, lambda _id: None)

    assert list(result.released) == [running]
    for wave_id in (draft, paused, cancelled):
        assert released_count(own_db, wave_id) == 0
    with own_db() as session:
        assert session.get(Wave, draft).state is WaveState.DRAFT
        assert session.get(Wave, paused).state is WaveState.PAUSED


def test_a_wave_with_nothing_left_is_done(own_db, clock):
    wave_id = make_wave(own_db, {"a": "Europe/Brussels", "b": "Europe/Brussels"},
                        rate_per_minute=600, clock=clock)
    with own_db() as session, session.begin():
        first, second = deliveries_of(session, wave_id=wave_id)
        set_state(session, first.id, DeliveryState.SENT)
        set_state(session, second.id, DeliveryState.IN_DOUBT)

    assert tick(own_db, lambda _id: None).finished == []  # in doubt is not finished

    with own_db() as session, session.begin():
        set_state(session, second.id, DeliveryState.FAILED)
    result = tick(own_db, lambda _id: None)

    assert result.finished == [wave_id]
    with own_db() as session:
        wave = session.get(Wave, wave_id)
        assert wave.state is WaveState.DONE
        assert wave.finished_at is not None
        assert [e.kind for e in events_for(session, "wave", str(wave_id))][-1] == "wave.done"
    assert tick(own_db, lambda _id: None).finished == []  # not running any more


def test_retries_are_not_released_before_their_time(own_db, clock):
    wave_id = make_wave(own_db, {"a": "Europe/Brussels"}, rate_per_minute=600, clock=clock)
    with own_db() as session, session.begin():
        (delivery,) = deliveries_of(session, wave_id=wave_id)
        set_state(session, delivery.id, DeliveryState.PENDING,
                  next_attempt_at=clock.now + timedelta(seconds=60))

    clock.advance(30)
    assert tick(own_db, lambda _id: None).total == 0
    clock.advance(31)
    assert tick(own_db, lambda _id: None).released == {wave_id: [delivery.id]}


def test_enqueue_happens_after_commit(own_db, clock):
    make_wave(own_db, {"a": "Europe/Brussels"}, per_recipient=3, rate_per_minute=600,
              clock=clock)
    seen: list[tuple[DeliveryState, object]] = []

    def enqueue(delivery_id: int) -> None:
        with own_db() as other:  # a new session: sees only what was committed
            delivery = other.get(Delivery, delivery_id)
            seen.append((delivery.state, delivery.lease_until))

    clock.advance(10)
    tick(own_db, enqueue)

    assert seen == [(DeliveryState.RELEASED, clock.now + RELEASE_LEASE)] * 3


def test_what_the_task_queue_refuses_goes_back_to_pending_at_once(own_db, clock):
    wave_id = make_wave(own_db, {"a": "Europe/Brussels"}, per_recipient=6,
                        rate_per_minute=600, clock=clock)
    enqueued: list[list[int]] = []

    def enqueue_batch(batch: list[int]) -> None:
        if enqueued:  # the queue goes away after the first batch
            raise ConnectionError("task queue down")
        enqueued.append(batch)

    clock.advance(10)
    with pytest.raises(ConnectionError):
        tick(own_db, lambda _id: None, enqueue_batch=enqueue_batch, batch_size=2)

    with own_db() as session:
        states = {d.id: d.state for d in deliveries_of(session, wave_id=wave_id)}
        assert [states[i] for i in enqueued[0]] == [DeliveryState.RELEASED] * 2
        returned = [i for i, state in states.items() if i not in enqueued[0]]
        assert len(returned) == 4
        assert {states[i] for i in returned} == {DeliveryState.PENDING}
        assert all(session.get(Delivery, i).lease_until is None for i in returned)
        for delivery_id in returned:
            kinds = [e.kind for e in events_for(session, "delivery", str(delivery_id))]
            assert kinds[-2:] == ["delivery.released", "delivery.enqueue_failed"]
        assert verify_chain(session) is None

    # The next tick releases them again once the bucket allows; nothing is lost.
    clock.advance(10)
    again = tick(own_db, lambda _id: None, enqueue_batch=lambda _batch: None)
    assert sorted(again.released[wave_id]) == sorted(returned)


def test_concurrent_ticks_never_release_the_same_delivery(own_db):
    # Real time here: both threads tick as fast as they can over 400 deliveries.
    wave_id = make_wave(own_db, {"a": "UTC"}, per_recipient=400, rate_per_minute=600_000,
                        window_start_hour=0, window_end_hour=24,
                        weekdays=(0, 1, 2, 3, 4, 5, 6))
    released: list[list[int]] = [[], []]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(index: int) -> None:
        try:
            barrier.wait()
            deadline = time.monotonic() + 15
            while released_count(own_db, wave_id) < 400 and time.monotonic() < deadline:
                tick(own_db, released[index].append)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert not set(released[0]) & set(released[1])
    assert len(released[0]) + len(released[1]) == 400
    with own_db() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Event).where(
            Event.kind == "delivery.released")) == 400
        assert verify_chain(session) is None


def test_run_dispatcher_ticks_and_reconciles_until_stopped(own_db):
    wave_id = make_wave(own_db, {"a": "UTC"}, per_recipient=5, rate_per_minute=60_000,
                        window_start_hour=0, window_end_hour=24,
                        weekdays=(0, 1, 2, 3, 4, 5, 6))
    enqueued: list[int] = []
    reconciled: list[float] = []
    deadline = time.monotonic() + 10

    def should_stop() -> bool:
        return len(enqueued) >= 5 or time.monotonic() > deadline

    run_dispatcher(own_db, own_db.kw["bind"], enqueued.append, interval=0.02,
                   should_stop=should_stop, reconcile=lambda: reconciled.append(1))

    assert len(enqueued) == 5
    assert reconciled == [1]  # on the first tick, then once a minute
    assert released_count(own_db, wave_id) == 5


@pytest.fixture
def lock_id(monkeypatch) -> int:
    """An advisory lock id of this test's own, so parallel runs do not meet."""
    value = uuid.uuid4().int % 2**31
    monkeypatch.setattr(dispatcher, "ADVISORY_LOCK_ID", value)
    return value


def wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not on_postgres(), reason="the advisory lock exists on PostgreSQL only")
def test_one_dispatcher_holds_the_lock_and_another_takes_over(own_db, lock_id):
    engine = own_db.kw["bind"]
    first, second = DispatcherLock(engine), DispatcherLock(engine)

    assert first.ensure() is True
    assert second.ensure() is False
    assert first.ensure() is True  # still held
    assert second.ensure() is False

    first.release()  # a dispatcher stopping cleanly
    assert wait_for(second.ensure)
    assert first.ensure() is False

    # The active dispatcher's connection dies (process killed, network cut).
    pid = second.connection.scalar(sa.text("SELECT pg_backend_pid()"))
    second.connection.commit()
    with engine.connect() as admin:
        admin.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    assert wait_for(first.ensure)
    assert second.ensure() is False  # notices it lost the lock
    first.release()
    second.release()


def test_on_sqlite_one_dispatcher_holds_a_file_lock_and_another_takes_over(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    first, second = DispatcherLock(engine), DispatcherLock(engine)
    assert first.ensure() is True
    assert second.ensure() is False  # another process (or thread) waits
    assert first.ensure() is True
    first.release()  # a dispatcher ending, however it ends: the kernel drops the flock
    assert second.ensure() is True
    assert first.ensure() is False
    second.release()
    assert (tmp_path / "x.sqlite3.dispatcher.lock").exists()


def test_an_in_memory_database_is_one_process_and_always_granted():
    engine = sa.create_engine("sqlite://")
    assert DispatcherLock(engine).ensure() is True
    assert DispatcherLock(engine).ensure() is True


@pytest.mark.skipif(not on_postgres(), reason="the advisory lock exists on PostgreSQL only")
def test_installs_in_other_schemas_of_one_database_each_have_their_dispatcher(
        own_db, databases, lock_id):
    other = sa.create_engine(databases.new_url())
    try:
        here, there = DispatcherLock(own_db.kw["bind"]), DispatcherLock(other)
        rival_here = DispatcherLock(own_db.kw["bind"])
        assert here.ensure() is True
        assert there.ensure() is True  # another schema: not blocked by this one
        assert rival_here.ensure() is False  # the same schema: still one at a time
        here.release()
        there.release()
    finally:
        other.dispose()


def _release_all(own_db, wave_id: int, count: int) -> list[int]:
    """Tick until the wave's bucket has let ``count`` deliveries go."""
    released: list[int] = []
    deadline = time.monotonic() + 5
    while len(released) < count and time.monotonic() < deadline:
        released += tick(own_db, lambda _id: None).released.get(wave_id, [])
        time.sleep(0.02)
    assert len(released) == count
    return released


def test_a_run_continues_with_its_next_wave_when_one_is_done(own_db):
    with own_db.begin() as session:
        make_recipient(session, "r1")
        summary = create_run(session, name="two waves", message_type="invoice", specs=[
            MessageSpec(recipient_key="r1", subject_key=f"invoice:{n}", parameters={})
            for n in range(4)], selection={}, created_by="test",
            options=Options(wave_size=4, rate_per_minute=6000, window_start_hour=0,
                            window_end_hour=24, weekdays=tuple(range(7))))
        first, second = [wave.id for wave in summary.run.waves][:2]
        start_wave(session, first, actor="test")
    released = _release_all(own_db, first, 4)
    with own_db.begin() as session:
        session.execute(sa.update(Delivery).where(Delivery.id.in_(released))
                        .values(state=DeliveryState.SENT))
    tick(own_db, lambda _id: None)  # the first wave is done: the second starts
    with own_db() as session:
        assert session.get(Wave, first).state is WaveState.DONE
        assert session.get(Wave, second).state is WaveState.RUNNING
        started = [e for e in events_for(session, "wave", str(second))
                   if e.kind == "wave.started"]
    assert started[0].payload == {"after_wave": first} and started[0].actor == "dispatcher"


def test_a_wave_by_wave_run_waits_for_the_operator(own_db):
    with own_db.begin() as session:
        make_recipient(session, "r1")
        summary = create_run(session, name="by hand", message_type="invoice", specs=[
            MessageSpec(recipient_key="r1", subject_key=f"invoice:{n}", parameters={})
            for n in range(4)], selection={}, created_by="test",
            options=Options(wave_size=4, rate_per_minute=6000, window_start_hour=0,
                            window_end_hour=24, weekdays=tuple(range(7)),
                            auto_continue=False))
        first, second = [wave.id for wave in summary.run.waves][:2]
        start_wave(session, first, actor="test")
    released = _release_all(own_db, first, 4)
    with own_db.begin() as session:
        session.execute(sa.update(Delivery).where(Delivery.id.in_(released))
                        .values(state=DeliveryState.SENT))
    tick(own_db, lambda _id: None)
    with own_db() as session:
        assert session.get(Wave, first).state is WaveState.DONE
        assert session.get(Wave, second).state is WaveState.DRAFT
