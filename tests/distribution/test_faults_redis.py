"""Fault test: Redis restarted under running ``herald worker`` processes (RedisHuey).

The test starts a private ``redis-server`` on a free loopback port (never the shared
one on 6379), without persistence, so a restart loses every task queued in it: the
worst case. The database is the truth and the queue only transport (ARCHITECTURE.md,
decision 2): deliveries whose send tasks were lost wait out their release lease, the
reconciler puts them back to pending, and the dispatcher releases them again. The
dispatcher and the workers must ride the outage out without being restarted. What the
dispatcher releases while Redis is down, the queue refuses: those deliveries go back to
pending at once instead of waiting out the lease.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from distribution.deliveries import DeliveryState
from distribution.events import Event
from tests.distribution.fault_support import (  # noqa: F401 - the fixtures are used by name
    all_final,
    check_outcome,
    count_in,
    fault_db_fixture,
    peer_fixture,
    processes_fixture,
    report,
    seed_wave,
    start_worker,
    wait_for,
)

REDIS_SERVER = shutil.which("redis-server")
DOWN_SECONDS = 2.0


class PrivateRedis:
    """A ``redis-server`` of the test's own on 127.0.0.1, with nothing saved to disk."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers."""
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        wait_for(self.answers, 10, "redis-server answering")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM (without persistence nothing is saved), then SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    if REDIS_SERVER is None:
        pytest.skip("needs redis-server (Debian package redis-server)")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = PrivateRedis(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_redis_restarted_under_running_workers(fault_db, peer, processes, private_redis):
    started = time.monotonic()
    _, make_session = fault_db
    count = 60
    peer.slow_down(0.05)
    # Tasks lost with Redis come back when this lease expires.
    processes.env.update({"HUEY_URL": private_redis.url, "HERALD_RELEASE_LEASE_SECONDS": "4"})
    worker = start_worker(processes, make_session)
    dispatcher = processes.start("dispatcher", "dispatcher", "--interval", "0.5",
                                 "--reconcile-every", "1")
    seed_wave(make_session, count, rate_per_minute=600)

    wait_for(lambda: len(peer.messages) >= 15, 40, "15 messages at the peer", processes)
    private_redis.stop()
    sent_at_stop = len(peer.messages)
    waiting = count_in(make_session, DeliveryState.RELEASED)  # their tasks are gone now
    time.sleep(DOWN_SECONDS)
    private_redis.start()

    wait_for(lambda: all_final(make_session, count), 60, "every delivery final", processes)
    survived = dispatcher.poll() is None and worker.poll() is None
    processes.stop_all()
    assert survived, processes.all_logs()
    assert sent_at_stop < count, "Redis went down after the wave"
    outcome = check_outcome(make_session, peer, count)
    with make_session() as session:  # tasks lost inside Redis came back through their lease
        recovered = session.scalar(sa.select(sa.func.count()).select_from(Event).where(
            Event.kind == "delivery.lease_expired"))
        refused = session.scalar(sa.select(sa.func.count()).select_from(Event).where(
            Event.kind == "delivery.enqueue_failed"))
    # The dispatcher kept releasing while Redis was down; the queue refused those tasks and
    # they went back to pending at once. (Tasks queued before the stop and not yet taken
    # by the worker were lost with Redis: `recovered`, often none, as the worker is quick.)
    assert "redis.exceptions.ConnectionError" in processes.log(dispatcher)
    assert refused > 0, processes.log(dispatcher)
    report("redis_restart", outcome, started, released_at_stop=waiting,
           lease_expired=recovered, enqueue_refused=refused, down_seconds=DOWN_SECONDS)
