"""The task queue: SQLite by default, Redis when HUEY_URL says so; tasks really run."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from huey import PriorityRedisHuey, RedisHuey, SqliteHuey
from sqlalchemy.orm import sessionmaker

from distribution.worker import QueueConfigError, latest_heartbeat, make_huey, register_tasks
from portal.db import make_engine
from portal.migrate import upgrade


def test_backend_is_chosen_by_url(tmp_path):
    assert isinstance(make_huey(None, tmp_path), SqliteHuey)
    assert isinstance(make_huey("redis://127.0.0.1:6379/0", tmp_path), PriorityRedisHuey)
    with pytest.raises(QueueConfigError, match="HUEY_URL='amqp://x'"):
        make_huey("amqp://x", tmp_path)


@pytest.fixture
def make_session(databases):
    """Sessions on a migrated database of the test's own: the worker's threads commit for real."""
    engine = make_engine(databases.new_url())
    upgrade(engine)
    yield sessionmaker(engine)
    engine.dispose()


def _run_heartbeat_through(huey, make_session):
    tasks = register_tasks(huey, make_session)
    consumer = huey.create_consumer(workers=1, worker_type="thread", periodic=False)
    consumer.start()
    try:
        tasks.heartbeat()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with make_session() as session:
                beat = latest_heartbeat(session)
            if beat is not None:
                return beat
            time.sleep(0.1)
        return None
    finally:
        consumer.stop(graceful=True)


def test_sqlite_queue_runs_the_heartbeat(make_session, tmp_path):
    beat = _run_heartbeat_through(make_huey(None, tmp_path), make_session)
    assert beat is not None and beat.tasks_run == 1


def test_redis_queue_runs_the_heartbeat(make_session):
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("Redis is not running on 127.0.0.1:6379; .ci/run starts it")
    huey = RedisHuey(f"herald-test-{uuid.uuid4().hex[:8]}", host="127.0.0.1", port=6379)
    try:
        beat = _run_heartbeat_through(huey, make_session)
        assert beat is not None and beat.tasks_run == 1
    finally:
        huey.storage.flush_all()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_sends_overtake_bulk_work_queued_before_them(backend, tmp_path):
    from distribution.worker import BULK_PRIORITY, SEND_PRIORITY

    if backend == "sqlite":
        huey = make_huey(None, tmp_path)
    else:
        # The class make_huey picks for Redis, on a queue of the test's own.
        huey = PriorityRedisHuey(f"herald-test-{uuid.uuid4().hex[:8]}",
                                 url="redis://127.0.0.1:6379/0")
    ran: list[str] = []

    @huey.task(priority=BULK_PRIORITY)
    def render(n: int) -> None:
        ran.append(f"render {n}")

    @huey.task(priority=SEND_PRIORITY)
    def send(n: int) -> None:
        ran.append(f"send {n}")

    try:
        for n in range(3):
            render(n)
        send(0)
        while (task := huey.dequeue()) is not None:
            huey.execute(task)
        assert ran[0] == "send 0" and sorted(ran[1:]) == ["render 0", "render 1", "render 2"]
    finally:
        huey.storage.flush_all()
