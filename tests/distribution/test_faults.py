"""Fault tests: a worker killed mid-wave, the SMTP server down, the database restarted,
two dispatchers and the active one killed.

After each fault every delivery must end in exactly one final state (here: all
``sent``), none lost, none sent twice under two different ``Message-ID``s (the
SMTP peer sees only the delivery's deterministic one), and the event log must
tell the whole story: replaying each delivery's events through the state
machine ends in its state, nothing is released twice without going back to
``pending`` first, and the hash chain verifies. A resend of an email whose fate
was in doubt carries the same ``Message-ID``; those duplicates are the
documented policy (ARCHITECTURE.md, decision 5) and are counted, not refused.

The slow tests run real ``herald worker`` and ``herald dispatcher`` processes on
a database of their own, with the SQLite task queue in their instance folder,
sending to an aiosmtpd peer on loopback; every process is killed at the end,
whatever happened.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from distribution.channels.base import ChannelName
from distribution.channels.email import EmailChannel
from distribution.channels.email_settings import SmtpSettings
from distribution.deliveries import FINAL_STATES, Delivery, DeliveryState
from distribution.dispatcher import tick
from distribution.documents import DatabaseStore
from distribution.events import Event, verify_chain
from distribution.preferences import set_preference
from distribution.runs import start_wave
from distribution.sending import Sender, SendingPolicy
from portal.db import make_engine
from portal.migrate import upgrade
from tests.conftest import on_postgres
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
        if kind == "delivery.planned":
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


def check_outcome(make_session: sessionmaker[Session], peer: SmtpPeer, count: int) -> Outcome:
    """Assert the fault cost nothing: all sent once under one Message-ID, the log intact."""
    with make_session() as session:
        deliveries = list(session.scalars(sa.select(Delivery).order_by(Delivery.id)))
        rows = session.execute(sa.select(Event.subject_key, Event.kind, Event.payload)
                               .where(Event.subject_type == "delivery").order_by(Event.id)).all()
        assert verify_chain(session) is None
    assert len(deliveries) == count
    assert Counter(d.state for d in deliveries) == {DeliveryState.SENT: count}

    timelines: dict[int, list[tuple[str, dict]]] = defaultdict(list)
    for key, kind, payload in rows:
        timelines[int(key)].append((kind, payload))
    for delivery in deliveries:
        assert replay(timelines[delivery.id]) == delivery.state, timelines[delivery.id]
        kinds = [kind for kind, _ in timelines[delivery.id]]
        assert kinds.count("delivery.sending") == delivery.attempts
        assert kinds[-1] == "delivery.sent"

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


@pytest.fixture
def fault_db(databases) -> Iterator[tuple[str, sessionmaker[Session]]]:
    """A migrated database of the test's own: its URL (for processes) and sessions."""
    url = databases.new_url()
    engine = make_engine(url)
    upgrade(engine)
    yield url, sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def peer() -> Iterator[SmtpPeer]:
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


@pytest.fixture
def processes(fault_db, peer, tmp_path) -> Iterator[Processes]:
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


def count_in(make_session: sessionmaker[Session], *states: DeliveryState) -> int:
    with make_session() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Delivery)
                              .where(Delivery.state.in_(states)))


def all_final(make_session: sessionmaker[Session], count: int) -> bool:
    return count_in(make_session, *FINAL_STATES) == count


# -- 1. a consumer killed with SIGKILL mid-wave -------------------------------------------------
@pytest.mark.slow
def test_a_worker_killed_mid_wave_costs_nothing(fault_db, peer, processes):
    started = time.monotonic()
    _, make_session = fault_db
    count = 100
    seed_wave(make_session, count, rate_per_minute=600)
    peer.slow_down(0.08)  # so that a kill lands in the middle of a send
    processes.env["HERALD_SEND_LEASE_SECONDS"] = "3"
    processes.start("dispatcher", "dispatcher", "--interval", "0.5", "--reconcile-every", "1")
    worker = processes.start("worker", "worker", "--workers", "2")

    wait_for(lambda: len(peer.messages) >= 30 and count_in(make_session, DeliveryState.SENDING),
             40, "30 messages at the peer and a send in flight", processes)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=5)
    with make_session() as session:
        in_flight = session.scalars(sa.select(Delivery.id).where(
            Delivery.state == DeliveryState.SENDING)).all()
    assert in_flight, "the kill was meant to land mid-send"
    processes.start("worker", "worker", "--workers", "2")

    wait_for(lambda: all_final(make_session, count), 60, "every delivery final", processes)
    processes.stop_all()
    outcome = check_outcome(make_session, peer, count)
    with make_session() as session:  # what was in flight went through doubt and came back
        for delivery_id in in_flight:
            kinds = list(session.scalars(sa.select(Event.kind).where(
                Event.subject_type == "delivery", Event.subject_key == str(delivery_id))
                .order_by(Event.id)))
            assert kinds[-5:] == ["delivery.in_doubt", "delivery.retry_in_doubt",
                                  "delivery.released", "delivery.sending", "delivery.sent"]
    assert outcome.in_doubt >= len(in_flight)
    assert outcome.duplicates <= outcome.in_doubt
    report("worker_sigkill", outcome, started, in_flight_at_kill=len(in_flight))


# -- 2. the SMTP server down for a while, then back --------------------------------------------
def test_the_smtp_server_down_then_back(fault_db, peer):
    started = time.monotonic()
    _, make_session = fault_db
    count = 40
    seed_wave(make_session, count, rate_per_minute=1200)
    settings = SmtpSettings(host=peer.host, port=peer.port, from_address=MAIL_FROM,
                            message_id_domain=MESSAGE_ID_DOMAIN, timeout=2)
    policy = SendingPolicy(max_attempts=20, first_backoff=timedelta(milliseconds=200),
                           max_backoff=timedelta(seconds=1))
    with EmailChannel(settings) as channel:
        sender = Sender(make_session, {ChannelName.EMAIL: channel}, DatabaseStore(), policy)
        phase, phase_started = "up", 0.0
        deadline = time.monotonic() + 45
        while not all_final(make_session, count):
            assert time.monotonic() < deadline, f"not all final; phase {phase}"
            tick(make_session, sender.send)  # sends at once, in this thread
            now = time.monotonic()
            if phase == "up" and len(peer.messages) >= 10:
                # Going down: first it answers 421 as a relay that is shutting down does ...
                peer.fail_always(421, "4.3.2 Service shutting down", at="MAIL")
                phase, phase_started = "421", now
            elif phase == "421" and now - phase_started > 2:
                peer.stop()  # ... then it does not listen at all
                phase, phase_started = "stopped", now
            elif phase == "stopped" and now - phase_started > 2:
                peer.heal()
                peer.restart()
                phase, phase_started = "back", now
            time.sleep(0.05)
    assert phase == "back", "the wave ended before the server came back"
    outcome = check_outcome(make_session, peer, count)
    with make_session() as session:
        retries = session.execute(sa.select(Event.payload).where(
            Event.kind == "delivery.retry_scheduled")).scalars().all()
    reasons = [payload["reason"] for payload in retries]
    assert any(r.startswith("SMTP 421 at MAIL") for r in reasons), reasons
    assert any("unreachable at CONNECT: ConnectionRefusedError" in r for r in reasons), reasons
    assert outcome.retried >= 1 and outcome.duplicates == 0 and outcome.in_doubt == 0
    report("smtp_down", outcome, started, retry_events=len(retries))


# -- 3. the database restarted mid-wave ---------------------------------------------------------
def restart_postgres() -> float:
    """Restart the local PostgreSQL cluster (clients are cut off); seconds until it is back."""
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        pytest.skip("needs pg_ctlcluster and the local PostgreSQL cluster to restart")
    started = time.monotonic()
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                   check=True, timeout=60, capture_output=True)
    wait_for(lambda: subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"], timeout=5,
                                    check=False).returncode == 0, 30, "PostgreSQL back")
    return time.monotonic() - started


@pytest.mark.slow
@pytest.mark.skipif(not on_postgres(), reason="restarts the PostgreSQL server; SQLite runs "
                                              "inside the processes and has no server")
def test_the_database_restarted_mid_wave(fault_db, peer, processes):
    started = time.monotonic()
    _, make_session = fault_db
    count = 60
    seed_wave(make_session, count, rate_per_minute=600)
    peer.slow_down(0.05)
    # A send task that meets the database down is lost; its delivery waits out this lease.
    processes.env["HERALD_RELEASE_LEASE_SECONDS"] = "4"
    dispatcher = processes.start("dispatcher", "dispatcher", "--interval", "0.5",
                                 "--reconcile-every", "1")
    worker = processes.start("worker", "worker", "--workers", "2")

    wait_for(lambda: len(peer.messages) >= 20, 40, "20 messages at the peer", processes)
    downtime = restart_postgres()
    sent_before_restart = len(peer.messages)
    wait_for(lambda: all_final(make_session, count), 60, "every delivery final", processes)
    survived = dispatcher.poll() is None and worker.poll() is None
    processes.stop_all()
    assert survived, processes.all_logs()
    assert sent_before_restart < count, "the restart came after the wave"
    outcome = check_outcome(make_session, peer, count)
    report("database_restart", outcome, started, restart_seconds=f"{downtime:.1f}")


# -- 4. two dispatchers, the active one killed --------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not on_postgres(), reason="the dispatcher lock is a PostgreSQL advisory "
                                              "lock; embedded, one process runs everything")
def test_a_standby_dispatcher_takes_over_from_a_killed_one(fault_db, peer, processes):
    started = time.monotonic()
    _, make_session = fault_db
    count = 60
    seed_wave(make_session, count, rate_per_minute=600)
    peer.slow_down(0.02)
    args = ("dispatcher", "--interval", "0.5", "--reconcile-every", "1")
    first = processes.start("dispatcher", *args)
    wait_for(lambda: "dispatcher lock taken" in processes.log(first), 20,
             "the first dispatcher active", processes)
    second = processes.start("dispatcher", *args)
    wait_for(lambda: "Dispatcher started" in processes.log(second), 20,
             "the second dispatcher waiting", processes)
    processes.start("worker", "worker", "--workers", "2")

    wait_for(lambda: len(peer.messages) >= 20, 40, "20 messages at the peer", processes)
    assert "dispatcher lock taken" not in processes.log(second)  # only one releases
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=5)
    sent_at_kill = len(peer.messages)
    takeover = wait_for(lambda: "dispatcher lock taken" in processes.log(second), 15,
                        "the second dispatcher taking over", processes)
    assert takeover < 5
    wait_for(lambda: all_final(make_session, count), 60, "every delivery final", processes)
    processes.stop_all()
    assert sent_at_kill < count, "the kill came after the wave"
    outcome = check_outcome(make_session, peer, count)
    with make_session() as session:  # one release per attempt: nothing released twice
        released = Counter(session.scalars(sa.select(Event.subject_key).where(
            Event.kind == "delivery.released")))
        for delivery in session.scalars(sa.select(Delivery)):
            assert released[str(delivery.id)] == delivery.attempts, delivery.id
    report("dispatcher_takeover", outcome, started, takeover_seconds=f"{takeover:.1f}")
