"""What every fault test shares: the final checks, seeding, ``herald`` subprocesses.

The fixtures are registered under their names (``fault_db``, ``peer``,
``processes``) but defined under other Python names, so a test module imports
them without its parameters shadowing the import (ruff F811).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from distribution.channels.base import ChannelName
from distribution.deliveries import FINAL_STATES, Delivery, DeliveryState
from distribution.events import Event, verify_chain
from distribution.models import WorkerHeartbeat
from distribution.preferences import set_preference
from distribution.runs import start_wave
from portal.db import make_engine
from portal.migrate import upgrade
from tests.distribution.conftest import make_recipient, run_for
from tests.peers.smtp import SmtpPeer

MAIL_FROM = "billing@seller.example"
MESSAGE_ID_DOMAIN = "seller.example"
HERALD = Path(sys.executable).with_name("herald")
SETTINGS_PREFIXES = ("HERALD_", "DATABASE_URL", "HUEY_", "SMTP_", "MAIL_", "SECRET_KEY",
                     "DKIM_", "PEPPOL_", "VAPID_", "FCM_")


# -- the checks every fault test ends with ---------------------------------------------------
@dataclass
class Outcome:
    """What a wave that went through a fault looked like in the end."""

    deliveries: int
    received: int
    duplicates: int  # resends of the same Message-ID, all of deliveries that were in doubt
    in_doubt: int  # deliveries the reconciler found in doubt
    retried: int  # deliveries that needed more than one attempt


def replay(timeline: list[tuple[str, dict]]) -> str | None:
    """Walk one delivery's events through the state machine; return the state they end in.

    Fails on any step the machine does not allow, e.g. a second ``released``
    without the delivery having gone back to ``pending`` in between.
    """
    state: str | None = None
    for kind, payload in timeline:
        if kind in ("delivery.planned", "delivery.fallback_created"):
            assert state is None, f"planned twice: {timeline}"
            state = DeliveryState.PENDING
        elif kind == "delivery.released":
            assert state == DeliveryState.PENDING, f"released from {state}: {timeline}"
            state = DeliveryState.RELEASED
        else:
            assert "to" in payload, f"an event that is not a transition: {kind} {payload}"
            assert state in payload["from"], f"{kind} from {state}: {timeline}"
            state = payload["to"]
    return state


def check_log(make_session: sessionmaker[Session]
              ) -> tuple[list[Delivery], dict[int, list[tuple[str, dict]]]]:
    """Assert the event log is whole: the chain verifies, and each delivery's events replay
    to its state with one ``sending`` per attempt; returns the deliveries and timelines."""
    with make_session() as session:
        deliveries = list(session.scalars(sa.select(Delivery).order_by(Delivery.id)))
        rows = session.execute(sa.select(Event.subject_key, Event.kind, Event.payload)
                               .where(Event.subject_type == "delivery").order_by(Event.id)).all()
        assert verify_chain(session) is None
    timelines: dict[int, list[tuple[str, dict]]] = defaultdict(list)
    for key, kind, payload in rows:
        timelines[int(key)].append((kind, payload))
    for delivery in deliveries:
        assert replay(timelines[delivery.id]) == delivery.state, timelines[delivery.id]
        kinds = [kind for kind, _ in timelines[delivery.id]]
        assert kinds.count("delivery.sending") == delivery.attempts
    return deliveries, timelines


def check_outcome(make_session: sessionmaker[Session], peer: SmtpPeer, count: int) -> Outcome:
    """Assert the fault cost nothing: all sent once under one Message-ID, the log intact."""
    deliveries, timelines = check_log(make_session)
    assert len(deliveries) == count
    assert Counter(d.state for d in deliveries) == {DeliveryState.SENT: count}
    for delivery in deliveries:
        assert timelines[delivery.id][-1][0] == "delivery.sent"

    received: dict[int, list[str]] = defaultdict(list)
    for message in peer.messages:
        parsed = message.parsed()
        received[int(parsed["X-Herald-Delivery"])].append(str(parsed["Message-ID"]))
    assert set(received) == {d.id for d in deliveries}  # none lost, nothing unknown sent
    for delivery in deliveries:
        expected = f"<{delivery.idempotency_key}@{MESSAGE_ID_DOMAIN}>"
        assert delivery.provider_message_id == expected
        assert set(received[delivery.id]) == {expected}, delivery.id
        if len(received[delivery.id]) > 1:  # a resend only ever follows a doubt
            assert "delivery.in_doubt" in [k for k, _ in timelines[delivery.id]], delivery.id
    return Outcome(
        deliveries=count, received=len(peer.messages),
        duplicates=sum(len(ids) - 1 for ids in received.values()),
        in_doubt=sum("delivery.in_doubt" in [k for k, _ in t] for t in timelines.values()),
        retried=sum(d.attempts > 1 for d in deliveries))


def report(name: str, outcome: Outcome, started: float, **extra: object) -> None:
    """One line per test with the figures the fault left (shown with ``pytest -s``)."""
    figures = " ".join(f"{k}={v}" for k, v in {**vars(outcome), **extra}.items())
    print(f"FAULT {name} {figures} seconds={time.monotonic() - started:.1f}")


# -- seeding ----------------------------------------------------------------------------------
def seed_wave(make_session: sessionmaker[Session], count: int, *, rate_per_minute: float) -> int:
    """``count`` recipients with email only (link only: nothing waits for a PDF), one run in
    one running wave open day and night; returns the wave id."""
    with make_session() as session, session.begin():
        keys = [f"c{n:03d}" for n in range(count)]
        for key in keys:
            recipient = make_recipient(session, key, email=f"{key}@example.com")
            set_preference(session, recipient, "*", [ChannelName.EMAIL], email_attachments=[])
        summary = run_for(session, keys, rate_per_minute=rate_per_minute, window_start_hour=0,
                          window_end_hour=24, weekdays=tuple(range(7)))
        wave_id = summary.run.waves[0].id
        start_wave(session, wave_id, actor="test")
    return wave_id


@pytest.fixture(name="fault_db")
def fault_db_fixture(databases) -> Iterator[tuple[str, sessionmaker[Session]]]:
    """A migrated database of the test's own: its URL (for processes) and sessions."""
    url = databases.new_url()
    engine = make_engine(url)
    upgrade(engine)
    yield url, sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture(name="peer")
def peer_fixture() -> Iterator[SmtpPeer]:
    with SmtpPeer() as smtp:
        yield smtp


# -- processes --------------------------------------------------------------------------------
class Processes:
    """``herald`` subprocesses of one test, each logging to a file; all killed at the end."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.started: list[subprocess.Popen] = []
        self.logs: dict[int, Path] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = self.folder / f"{name}-{len(self.started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen([str(HERALD), *args], env=self.env, stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.started.append(process)
        self.logs[process.pid] = log
        return process

    def log(self, process: subprocess.Popen) -> str:
        return self.logs[process.pid].read_text(errors="replace")

    def all_logs(self) -> str:
        return "\n".join(f"--- {path.name} ---\n{path.read_text(errors='replace')[-4000:]}"
                         for path in self.logs.values())

    def stop_all(self) -> None:
        """SIGTERM, then SIGKILL whatever is still alive after a few seconds."""
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 8
        for process in self.started:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture(name="processes")
def processes_fixture(fault_db, peer, tmp_path) -> Iterator[Processes]:
    """Runs ``herald`` commands against the test's database and the SMTP peer."""
    url, _ = fault_db
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
    env.update({
        "DATABASE_URL": url, "HERALD_INSTANCE_PATH": str(tmp_path / "instance"),
        "MAIL_FROM": MAIL_FROM, "SMTP_HOST": peer.host, "SMTP_PORT": str(peer.port),
        "SMTP_TIMEOUT": "5", "PYTHONUNBUFFERED": "1",
        "HERALD_SEND_LEASE_SECONDS": "3", "HERALD_RELEASE_LEASE_SECONDS": "10",
    })
    running = Processes(tmp_path, env)
    try:
        yield running
    finally:
        running.stop_all()


def wait_for(condition: Callable[[], bool], seconds: float, what: str,
             processes: Processes | None = None) -> float:
    """Poll ``condition`` until true; fail naming ``what`` (and the logs) after ``seconds``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if condition():
                return time.monotonic() - started
        except sa.exc.OperationalError:
            pass  # the database is restarting; ask again
        time.sleep(0.05)
    pytest.fail(f"timed out after {seconds} s waiting for {what}\n"
                + (processes.all_logs() if processes else ""))


def start_worker(processes: Processes, make_session: sessionmaker[Session],
                 *args: str) -> subprocess.Popen:
    """Start ``herald worker`` and wait until it has run a task (its first heartbeat), so
    that a slow start on a busy machine does not outlast the release lease."""
    with make_session() as session:
        before = session.scalar(sa.select(sa.func.count()).select_from(WorkerHeartbeat))
    worker = processes.start("worker", "worker", "--workers", "2", *args)
    wait_for(lambda: _heartbeats(make_session) > before, 40, "the worker's first heartbeat",
             processes)
    return worker


def _heartbeats(make_session: sessionmaker[Session]) -> int:
    with make_session() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(WorkerHeartbeat))


def count_in(make_session: sessionmaker[Session], *states: DeliveryState) -> int:
    with make_session() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Delivery)
                              .where(Delivery.state.in_(states)))


def all_final(make_session: sessionmaker[Session], count: int) -> bool:
    return count_in(make_session, *FINAL_STATES) == count


