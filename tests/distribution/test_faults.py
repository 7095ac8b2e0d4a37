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

More faults live beside this file: the SMTP relay refusing and a push service answering
500 then 410 (``test_faults_channels.py``), Redis restarted (``test_faults_redis.py``),
and the document folder's disk full (``tests/portal/test_faults_disk_full.py``); the
checks they share are in ``fault_support.py``. On SQLite the dispatcher lock is an
``flock`` beside the database file, so the take-over test runs on both databases.

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
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from distribution.channels.base import ChannelName
from distribution.channels.email import EmailChannel
from distribution.channels.email_settings import SmtpSettings
from distribution.deliveries import Delivery, DeliveryState
from distribution.dispatcher import tick
from distribution.documents import DatabaseStore
from distribution.events import Event
from distribution.sending import Sender, SendingPolicy
from tests.conftest import on_postgres
from tests.distribution.fault_support import (  # noqa: F401 - the fixtures are used by name
    MAIL_FROM,
    MESSAGE_ID_DOMAIN,
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
            doubt = kinds.index("delivery.in_doubt")
            assert kinds[doubt + 1] == "delivery.retry_in_doubt", kinds
            # A new worker slow to start on a busy machine may let a release lease expire
            # (released -> pending -> released) before the resend; the replay allows that.
            assert kinds[-3:] == ["delivery.released", "delivery.sending", "delivery.sent"]
            assert kinds.count("delivery.sending") >= 2, kinds  # the killed send, the resend
    assert outcome.in_doubt >= len(in_flight)
    assert outcome.duplicates <= outcome.in_doubt
    report("worker_sigkill", outcome, started, in_flight_at_kill=len(in_flight))


# -- 2. the SMTP server down for a while, then back --------------------------------------------
def test_the_smtp_server_down_then_back(fault_db, peer):
    started = time.monotonic()
    _, make_session = fault_db
    count = 40
    # A burst is two seconds' worth (20 here): the first tick never sends the whole wave,
    # however long the machine took between starting the wave and the first tick.
    seed_wave(make_session, count, rate_per_minute=600)
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
    # Two a second: when 20 have gone out, 40 need another 20 s, longer than a restart takes.
    seed_wave(make_session, count, rate_per_minute=120)
    peer.slow_down(0.05)
    # A send task that meets the database down is lost; its delivery waits out this lease.
    processes.env["HERALD_RELEASE_LEASE_SECONDS"] = "4"
    dispatcher = processes.start("dispatcher", "dispatcher", "--interval", "0.5",
                                 "--reconcile-every", "1")
    worker = processes.start("worker", "worker", "--workers", "2")

    wait_for(lambda: len(peer.messages) >= 20, 60, "20 messages at the peer", processes)
    sent_before_restart = len(peer.messages)
    downtime = restart_postgres()
    wait_for(lambda: all_final(make_session, count), 120, "every delivery final", processes)
    survived = dispatcher.poll() is None and worker.poll() is None
    processes.stop_all()
    assert survived, processes.all_logs()
    assert sent_before_restart < count, "the restart came after the wave"
    outcome = check_outcome(make_session, peer, count)
    report("database_restart", outcome, started, restart_seconds=f"{downtime:.1f}")


# -- 4. two dispatchers, the active one killed --------------------------------------------------
@pytest.mark.slow
def test_a_standby_dispatcher_takes_over_from_a_killed_one(fault_db, peer, processes):
    """The lock is PostgreSQL's advisory lock, or on SQLite an ``flock`` on a file beside
    the database (one machine): either way the kernel or the server drops it with the
    killed process, and the standby takes it at its next tick."""
    started = time.monotonic()
    _, make_session = fault_db
    count = 60
    peer.slow_down(0.02)
    args = ("dispatcher", "--interval", "0.5", "--reconcile-every", "1")
    start_worker(processes, make_session)
    first = processes.start("dispatcher", *args)
    wait_for(lambda: "dispatcher lock taken" in processes.log(first), 20,
             "the first dispatcher active", processes)
    second = processes.start("dispatcher", *args)
    wait_for(lambda: "Dispatcher started" in processes.log(second), 20,
             "the second dispatcher waiting", processes)
    seed_wave(make_session, count, rate_per_minute=600)  # only now: both are up

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
            assert released[str(delivery.id)] == delivery.attempts, list(session.execute(
                sa.select(Event.kind, Event.actor, Event.at, Event.payload).where(
                    Event.subject_type == "delivery",
                    Event.subject_key == str(delivery.id)).order_by(Event.id)))
    report("dispatcher_takeover", outcome, started, takeover_seconds=f"{takeover:.1f}")
