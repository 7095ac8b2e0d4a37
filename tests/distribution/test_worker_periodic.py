"""Periodic tasks run once per period across all workers, not once per worker.

Each ``herald worker`` runs Huey's scheduler; two of them sharing a queue (the same
SQLite file, or the same Redis queue) are modelled by two Huey instances on it, each
with Herald's tasks registered, whose schedulers check the same minute at the same
moment from two threads. The queue then holds one copy of each periodic task (the
heartbeat excepted: every worker beats for itself), and draining it runs each once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta

import pytest
import redis
from huey import crontab
from huey.consumer import Scheduler
from sqlalchemy.orm import sessionmaker

from distribution.webhook_tasks import register_webhook_tasks
from distribution.worker import (
    PER_WORKER_PERIODIC,
    PERIOD_CLAIM_SECONDS,
    HeraldRedisHuey,
    OncePerPeriod,
    claim_period,
    latest_heartbeat,
    make_huey,
    period_claim_key,
    register_tasks,
)
from portal.db import make_engine
from portal.migrate import upgrade
from portal.queue import get_huey

MINUTE = datetime(2026, 11, 23, 12, 15, 7)


@pytest.fixture
def make_session(databases):
    """Sessions on a migrated database of the test's own (the tasks commit for real)."""
    engine = make_engine(databases.new_url())
    upgrade(engine)
    yield sessionmaker(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", "redis"])
def two_workers(request, tmp_path):
    """Two Huey instances on one queue, as two worker processes have them."""
    if request.param == "sqlite":
        yield make_huey(None, tmp_path), make_huey(None, tmp_path)
        return
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("Redis is not running on 127.0.0.1:6379; .ci/run starts it")
    name = f"herald-test-{uuid.uuid4().hex[:8]}"
    first = HeraldRedisHuey(name, url="redis://127.0.0.1:6379/0")
    second = HeraldRedisHuey(name, url="redis://127.0.0.1:6379/0")
    try:
        yield first, second
    finally:
        first.storage.flush_all()
        client.delete(*client.keys(f"herald.periodic.{name}.*") or [b"none"])


def register(huey, make_session, runs: list[str]) -> None:
    """Herald's distribution tasks and one periodic task of the test's, which counts runs."""
    register_tasks(huey, make_session)
    register_webhook_tasks(huey, make_session)

    @huey.periodic_task(crontab(minute="*"), name="tick")
    def tick() -> None:
        runs.append("tick")


def schedule_together(hueys, now: datetime) -> None:
    """Each worker's scheduler enqueues what is due at ``now``, all at the same moment."""
    barrier = threading.Barrier(len(hueys))
    errors: list[BaseException] = []

    def scheduler(huey) -> None:
        try:
            barrier.wait(10)
            Scheduler(huey, threading.Event(), 1, True).enqueue_periodic_tasks(now)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=scheduler, args=(huey,)) for huey in hueys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors


def drain(huey) -> Counter[str]:
    """Run everything queued; returns how many tasks of each name ran."""
    ran: Counter[str] = Counter()
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
        ran[task.name] += 1
    return ran


def test_two_workers_schedulers_run_each_periodic_task_once(two_workers, make_session):
    runs: list[str] = []
    for huey in two_workers:
        register(huey, make_session, runs)

    schedule_together(two_workers, MINUTE)
    ran = drain(two_workers[0])
    assert ran == Counter({"tick": 1, "webhooks": 1, "heartbeat": 2})
    assert runs == ["tick"]

    # Later in the same minute (a scheduler that started at another second): nothing new.
    schedule_together(two_workers, MINUTE + timedelta(seconds=40))
    assert drain(two_workers[1]) == Counter({"heartbeat": 2})

    # The next minute is a new period: once again, and once only.
    schedule_together(two_workers, MINUTE + timedelta(minutes=1))
    assert drain(two_workers[1]) == Counter({"tick": 1, "webhooks": 1, "heartbeat": 2})
    assert runs == ["tick", "tick"]


def test_a_task_not_due_is_not_claimed(tmp_path):
    huey = make_huey(None, tmp_path)
    runs: list[str] = []

    @huey.periodic_task(crontab(minute="23"), name="hourly")
    def hourly() -> None:
        runs.append("hourly")

    assert huey.read_periodic(MINUTE) == []
    assert [t.name for t in huey.read_periodic(MINUTE.replace(minute=23))] == ["hourly"]
    assert make_huey(None, tmp_path).read_periodic(MINUTE.replace(minute=23)) == []


def test_sqlite_claims_are_cleared_as_minutes_pass(tmp_path):
    huey = make_huey(None, tmp_path)
    for minute in range(5):
        assert claim_period(huey, "tick", MINUTE + timedelta(minutes=minute))
        assert not claim_period(huey, "tick", MINUTE + timedelta(minutes=minute))
    assert claim_period(huey, "other", MINUTE)
    keys = [row[0] for row in huey.storage.sql("select key from kv", results=True)]
    # Only each task's latest claim stays; an earlier minute can never be scheduled again.
    latest = MINUTE + timedelta(minutes=4)
    assert sorted(keys) == sorted([period_claim_key(huey.name, "tick", latest),
                                   period_claim_key(huey.name, "other", MINUTE)])


def test_redis_claims_expire(two_workers):
    first, second = two_workers
    if not isinstance(first, HeraldRedisHuey):
        pytest.skip("the expiry is Redis's; SQLite's claims are deleted (test above)")
    assert claim_period(first, "tick", MINUTE)
    assert not claim_period(second, "tick", MINUTE)
    ttl = first.storage.conn.ttl(period_claim_key(first.name, "tick", MINUTE))
    assert 0 < ttl <= PERIOD_CLAIM_SECONDS


def test_two_running_consumers_run_a_periodic_task_once(two_workers, make_session):
    """Two real consumers (as two ``herald worker`` processes run them), schedulers on:
    each checks the periodic tasks as it starts, and the task still runs once."""
    runs: list[str] = []
    for huey in two_workers:
        register(huey, make_session, runs)
    # Both schedulers must look at the same minute: not too close to its end.
    if datetime.now().second >= 55:
        time.sleep(61 - datetime.now().second)
    consumers = [huey.create_consumer(workers=2, worker_type="thread", periodic=True)
                 for huey in two_workers]
    for consumer in consumers:
        consumer.start()
    try:
        deadline = time.monotonic() + 20
        while not runs and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2)  # time enough for a second copy to be picked up and run
    finally:
        for consumer in consumers:
            consumer.stop(graceful=True)
    assert runs == ["tick"]
    with make_session() as session:
        # Each worker beat for itself (both ran the heartbeat, under this process's name).
        assert latest_heartbeat(session).tasks_run == 2


def test_the_apps_queue_schedules_its_periodic_tasks_once(app):
    huey = get_huey(app)
    assert isinstance(huey, OncePerPeriod)
    names = {task.name for task in huey._registry.periodic_tasks}
    assert {"webhooks", "render_wanted_pdfs", "signature_reminders",
            "purge_sign_in_records"} <= names
    assert names & PER_WORKER_PERIODIC == {"heartbeat"}


def test_an_unreachable_queue_skips_the_minute_and_the_scheduler_lives_on(caplog):
    huey = HeraldRedisHuey("herald-test-unreachable", url="redis://127.0.0.1:1/0")

    @huey.periodic_task(crontab(minute="*"), name="tick")
    def tick() -> None:
        raise AssertionError("never run")

    with caplog.at_level("ERROR", logger="distribution.worker"):
        assert huey.read_periodic(MINUTE) == []
    assert "could not claim this minute's run of periodic task tick" in caplog.text
