"""Benchmark: dispatch and send through a null channel, deliveries per second.

A wave of ``-n`` email deliveries (default 50,000; one message per delivery, five
per recipient, no attachments) runs at a rate far above what the machine can do,
inside an always-open send window. Then, timed:

- one **dispatcher process** runs the real dispatcher loop
  (:func:`distribution.dispatcher.run_dispatcher`, its default 1 s interval): token
  bucket, ``FOR UPDATE SKIP LOCKED`` claim on PostgreSQL, ``released`` with a lease
  and its events, commit, then enqueue;
- ``--workers`` **worker processes** (default 2, one per core) run the real send
  task function (``Tasks.send_batch`` registered by
  :func:`distribution.worker.register_tasks`, called with ``call_local``): claim
  ``released -> sending`` with its events, build the message (template, preferences),
  call the channel, record ``sent`` with its events.

The dispatcher and the workers are started (imports, connections) before the clock
starts; the dispatcher's first tick starts it. The channel is a null channel: its
``send`` returns a Receipt at once, so what is measured is Herald's own work and the
database's. The task engine's transport is
**not** measured: the dispatcher's ``enqueue`` puts the task's arguments on a
``multiprocessing`` queue that the workers read, instead of Huey's SQLite or Redis
storage. The clock runs from the first tick until every delivery is ``sent``. The
database server shares the same 2 cores.

Run from the repository root (PostgreSQL works in a schema of its own, dropped
afterwards; the SQLite file is deleted afterwards)::

    .venv/bin/python bench/send_throughput.py              # PostgreSQL at 127.0.0.1:5432/test
    .venv/bin/python bench/send_throughput.py --sqlite     # a temporary SQLite file (WAL)
    .venv/bin/python bench/send_throughput.py -n 20000 --workers 3 --batch-size 100

Goal (issue 4): at least 5,000 deliveries/s on PostgreSQL and 2,000 on SQLite on a
2-core machine. Prints ``BENCH send_null_<database> <n> deliveries/s`` and the CPU each
role used per delivery: the worker processes, the dispatcher process and, on
PostgreSQL, the server backends of those processes (found by their
``application_name``; the server's shared helpers such as the WAL writer, and other
work on the machine, are not counted). Afterwards it checks what ``herald audit
verify`` checks of the log (the hash chain) and that every delivery was sent once, with
one ``released``, one ``sending`` and one ``sent`` event; it exits with status 1 if not.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import queue
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plan_run import DEFAULT_URL, own_schema  # bench/ is on sys.path when run as a script

from distribution.channels.base import ChannelName, OutgoingMessage, Receipt
from distribution.deliveries import Delivery, DeliveryState
from distribution.documents import DatabaseStore
from distribution.events import Event, verify_chain
from distribution.preferences import Preference, ensure_message_types
from distribution.recipients import Address, Recipient
from distribution.runs import MessageSpec, WaveOptions, create_run, start_wave
from distribution.sending import Sender
from portal.db import make_engine
from portal.migrate import upgrade

MESSAGES_PER_RECIPIENT = 5
HUGE_RATE_PER_MINUTE = 60_000_000.0  # a million per second: the machine is the limit


class NullChannel:
    """A channel whose ``send`` returns at once."""

    def __init__(self, name: ChannelName = ChannelName.EMAIL) -> None:
        self.name = name

    def send(self, message: OutgoingMessage) -> Receipt:
        """Accept the message without sending it anywhere."""
        return Receipt(provider_message_id=f"<{message.idempotency_key}@null>")


def make_wave(engine: sa.Engine, deliveries: int) -> int:
    """Recipients with an email address, a run of ``deliveries`` email messages, started."""
    recipients = max(deliveries // MESSAGES_PER_RECIPIENT, 1)
    keys = [f"r{n}" for n in range(recipients)]
    with Session(engine) as session, session.begin():
        ensure_message_types(session)
        ids = session.scalars(sa.insert(Recipient.__table__).returning(Recipient.id), [
            {"recipient_key": key, "name": f"Customer {key}", "language": "en",
             "time_zone": "Europe/Brussels"} for key in keys]).all()
        session.execute(sa.insert(Address.__table__), [
            {"recipient_id": recipient_id, "channel": ChannelName.EMAIL,
             "value": f"{key}@example.com",
             "value_sha256": hashlib.sha256(f"{key}@example.com".encode()).hexdigest()}
            for recipient_id, key in zip(ids, keys, strict=True)])
        session.execute(sa.insert(Preference.__table__), [
            {"recipient_id": recipient_id, "message_type": "invoice", "channels": ["email"],
             "opted_out": False, "email_attachments": []} for recipient_id in ids])
        specs = []
        for n in range(deliveries):
            key = keys[n % recipients]
            number = f"INV-{n:07d}"
            specs.append(MessageSpec(key, f"invoice:{number}", {
                "customer_name": f"Customer {key}", "seller_name": "Bench Telecom",
                "number": number, "amount": "€ 120,15", "due_date": "31 December 2026",
                "link": f"https://portal.herald.test/invoices/{number}"},
                link=f"https://portal.herald.test/invoices/{number}"))
        options = WaveOptions(rate_per_minute=HUGE_RATE_PER_MINUTE, window_start_hour=0,
                              window_end_hour=24, weekdays=(0, 1, 2, 3, 4, 5, 6))
        summary = create_run(session, name="send bench", message_type="invoice", specs=specs,
                             selection={}, created_by="bench", options=options)
        wave_id = summary.run.waves[0].id
        start_wave(session, wave_id, actor="bench")
    return wave_id


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process on this machine has used; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_sent(engine: sa.Engine, wave_id: int) -> int:
    """How many of the wave's deliveries are sent."""
    with engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.count()).select_from(Delivery).where(
            Delivery.wave_id == wave_id, Delivery.state == DeliveryState.SENT))


def dispatcher_process(url: str, tasks: multiprocessing.Queue, stop: multiprocessing.Event,
                       go: multiprocessing.Event, batch_size: int | None) -> None:
    """The real dispatcher loop from ``go`` on; its enqueue hands tasks to the workers."""
    from distribution.dispatcher import run_dispatcher

    engine = make_engine(url)
    with engine.connect() as connection:  # connected before the clock starts
        connection.exec_driver_sql("SELECT 1")
    make_session = sessionmaker(engine, expire_on_commit=False)
    go.wait()
    run_dispatcher(make_session, engine, tasks.put, should_stop=stop.is_set,
                   enqueue_batch=tasks.put, batch_size=batch_size)
    engine.dispose()


def cache_compiled_templates() -> None:
    """Stand in for a proposed change to distribution/templates.py: compile each text once.

    ``templates.render`` compiles its Jinja texts on every call (``from_string``),
    which is most of a send's CPU. Only with ``--cache-templates``; the figure is
    then printed under a name of its own, as a projection, not as the product's.
    """
    import functools

    from distribution import templates

    templates._environment.from_string = functools.lru_cache(maxsize=256)(
        templates._environment.from_string)


def worker_process(url: str, tasks: multiprocessing.Queue, stop: multiprocessing.Event,
                   cache_templates: bool = False, every_channel: bool = False) -> None:
    """Run the registered send task on whatever the dispatcher enqueued.

    The email channel is null; with ``every_channel`` all five are.
    """
    from huey import MemoryHuey

    from distribution.worker import register_tasks

    if cache_templates:
        cache_compiled_templates()

    engine = make_engine(url)
    with engine.connect() as connection:  # connected before the clock starts
        connection.exec_driver_sql("SELECT 1")
    make_session = sessionmaker(engine, expire_on_commit=False)
    channels = {name: NullChannel(name)
                for name in (ChannelName if every_channel else [ChannelName.EMAIL])}
    registered = register_tasks(MemoryHuey("bench"), make_session, lambda: Sender(
        make_session, channels, DatabaseStore()))
    while not stop.is_set():
        try:
            work = tasks.get(timeout=0.1)
        except queue.Empty:
            continue
        if isinstance(work, list):
            registered.send_batch.call_local(work)
        else:
            registered.send.call_local(work)
    engine.dispose()


def own_backends(engine: sa.Engine, tag: str) -> list[int]:
    """Process ids of the server backends whose ``application_name`` is ``tag``."""
    with engine.connect() as connection:
        return list(connection.scalars(sa.text(
            "SELECT pid FROM pg_stat_activity WHERE application_name = :tag"), {"tag": tag}))


def check_log(engine: sa.Engine, wave_id: int, deliveries: int) -> list[str]:
    """What ``herald audit verify`` checks of the log, and each step once per delivery."""
    problems = []
    with Session(engine) as session:
        broken = verify_chain(session)
        if broken is not None:
            problems.append(f"the event chain is broken at event {broken.event_id}: "
                            f"{broken.reason}")
        sent = session.scalar(sa.select(sa.func.count()).select_from(Delivery).where(
            Delivery.wave_id == wave_id, Delivery.state == DeliveryState.SENT))
        if sent != deliveries:
            problems.append(f"{sent} of {deliveries} deliveries are sent")
        keys = sa.select(sa.cast(Delivery.id, sa.String)).where(Delivery.wave_id == wave_id)
        steps = {kind: (total, distinct) for kind, total, distinct in session.execute(
            sa.select(Event.kind, sa.func.count(), sa.func.count(sa.distinct(Event.subject_key)))
            .where(Event.subject_type == "delivery", Event.subject_key.in_(keys))
            .group_by(Event.kind))}
        for kind in ("delivery.released", "delivery.sending", "delivery.sent"):
            if steps.get(kind) != (deliveries, deliveries):
                problems.append(f"{kind}: {steps.get(kind)} events (total, deliveries), "
                                f"expected {deliveries} of each")
    return problems


def run_bench(url: str, label: str, deliveries: int, workers: int, batch_size: int | None,
              cache_templates: bool) -> bool:
    """Set up the wave, run dispatcher and workers until all is sent, print the rate.

    Returns whether the log checks out afterwards.
    """
    engine = make_engine(url)
    tag = f"herald_bench_{uuid.uuid4().hex[:10]}"
    postgresql = label == "postgresql"
    # The bench's own processes name their server backends, so that their CPU is told
    # apart from other work on the server (and from this process's polling).
    process_url = (sa.make_url(url).update_query_dict({"application_name": tag})
                   .render_as_string(hide_password=False) if postgresql else url)
    try:
        upgrade(engine)
        started = time.perf_counter()
        wave_id = make_wave(engine, deliveries)
        print(f"set up {deliveries} deliveries in {time.perf_counter() - started:.1f} s "
              "(not timed)", file=sys.stderr)
        context = multiprocessing.get_context("spawn")
        tasks, stop, go = context.Queue(), context.Event(), context.Event()
        processes = [context.Process(target=worker_process,
                                     args=(process_url, tasks, stop, cache_templates))
                     for _ in range(workers)]
        dispatcher = context.Process(target=dispatcher_process,
                                     args=(process_url, tasks, stop, go, batch_size))
        for process in [*processes, dispatcher]:
            process.start()
        time.sleep(5)  # let them import and connect before the clock starts
        server_before = ({pid: process_cpu(pid) for pid in own_backends(engine, tag)}
                         if postgresql else {})
        workers_before = sum(process_cpu(process.pid) for process in processes)
        dispatcher_before = process_cpu(dispatcher.pid)
        started = time.perf_counter()
        go.set()
        sent = 0
        while sent < deliveries:
            time.sleep(0.2)
            sent = count_sent(engine, wave_id)
            if time.perf_counter() - started > 1800:
                break
        elapsed = time.perf_counter() - started
        # Backends started during the run count from zero.
        server_cpu = sum(process_cpu(pid) - server_before.get(pid, 0.0)
                         for pid in own_backends(engine, tag)) if postgresql else 0.0
        workers_cpu = sum(process_cpu(process.pid) for process in processes) - workers_before
        dispatcher_cpu = process_cpu(dispatcher.pid) - dispatcher_before
        stop.set()
        for process in [dispatcher, *processes]:
            process.join(30)
        rate = sent / elapsed
        print(f"{sent} sent in {elapsed:.1f} s with {workers} worker processes",
              file=sys.stderr)
        suffix = "_templates_cached" if cache_templates else ""
        print(f"BENCH send_null_{label}{suffix} {rate:.0f} deliveries/s")
        per = 1000 / max(sent, 1)
        print(f"BENCH send_null_{label}_worker_cpu {workers_cpu * per:.3f} ms/delivery")
        print(f"BENCH send_null_{label}_dispatcher_cpu {dispatcher_cpu * per:.3f} ms/delivery")
        if postgresql:
            print(f"BENCH send_null_{label}_server_cpu {server_cpu * per:.3f} ms/delivery")
        total = workers_cpu + dispatcher_cpu + server_cpu
        print(f"BENCH send_null_{label}_total_cpu {total * per:.3f} ms/delivery")
        problems = check_log(engine, wave_id, deliveries)
        for problem in problems:
            print(f"log check: {problem}", file=sys.stderr)
        if not problems:
            print("log check: the event chain is intact; every delivery was sent once, with "
                  "one released, one sending and one sent event", file=sys.stderr)
        return not problems
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    """Parse the options, make a database of the benchmark's own, run, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--deliveries", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="deliveries per send task (default: the dispatcher's own sizing)")
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL URL (default %(default)s)")
    parser.add_argument("--sqlite", action="store_true", help="use a temporary SQLite file")
    parser.add_argument("--verify", action="store_true",
                        help="kept for old command lines: the log is always checked now")
    parser.add_argument("--cache-templates", action="store_true",
                        help="project a template cache (see cache_compiled_templates)")
    args = parser.parse_args(argv)
    if args.sqlite:
        with tempfile.TemporaryDirectory(prefix="herald-bench-") as folder:
            intact = run_bench(f"sqlite:///{folder}/bench.sqlite3", "sqlite", args.deliveries,
                               args.workers, args.batch_size, args.cache_templates)
        raise SystemExit(0 if intact else 1)
    with own_schema(args.url) as url:
        intact = run_bench(url, "postgresql", args.deliveries, args.workers, args.batch_size,
                           args.cache_templates)
    raise SystemExit(0 if intact else 1)


if __name__ == "__main__":
    main()
