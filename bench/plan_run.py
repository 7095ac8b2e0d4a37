"""Benchmark: plan a large run with :func:`distribution.runs.create_run`.

Creates N recipients (each with an email address; every 10th also has a Peppol ID
and prefers Peppol for invoices, every 20th has opted out of invoices, every 7th
chose email only for everything) and a run of N messages (5 per recipient by
default, unique subject keys), then times ``create_run`` alone: finding existing
messages, resolving preferences, inserting messages, deliveries and their
hash-chained events, and splitting the deliveries into waves. Most recipients
follow the organisation default for invoices (email and the portal inbox), so a
message makes about 1.8 deliveries on average.

Run from the repository root (PostgreSQL works in a schema of its own, dropped
afterwards; the SQLite file is deleted afterwards)::

    .venv/bin/python bench/plan_run.py             # PostgreSQL at 127.0.0.1:5432/test
    .venv/bin/python bench/plan_run.py --url postgresql+psycopg://postgres@host:5432/db
    .venv/bin/python bench/plan_run.py --sqlite    # a temporary SQLite file
    .venv/bin/python bench/plan_run.py --recipients 20000 --messages 100000 --verify

Goal (issue 4): 1,000,000 deliveries planned on PostgreSQL in at most 60 s.
Prints ``BENCH <name> <value> <unit>`` lines.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery
from distribution.events import Event, verify_chain
from distribution.preferences import ALL_TYPES, Preference, ensure_message_types
from distribution.recipients import Address, Recipient
from distribution.runs import MessageSpec, WaveOptions, create_run
from distribution.sqltypes import utcnow
from portal.db import make_engine
from portal.migrate import upgrade

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BATCH = 20_000


def populate(engine: sa.Engine, recipients: int) -> None:
    """Recipients with addresses and some preferences, inserted in bulk (not timed)."""
    now = utcnow()
    with Session(engine) as session, session.begin():
        ensure_message_types(session)
        for start in range(0, recipients, BATCH):
            numbers = range(start, min(start + BATCH, recipients))
            ids = session.scalars(sa.insert(Recipient.__table__).returning(Recipient.id), [
                {"recipient_key": f"r{n}", "name": f"Customer {n}", "language": "en",
                 "time_zone": "Europe/Brussels" if n % 3 else "Europe/Lisbon",
                 "created_at": now} for n in numbers]).all()
            addresses, preferences = [], []
            for n, recipient_id in zip(numbers, ids, strict=True):
                email = f"customer{n}@example.com"
                addresses.append(_address(recipient_id, ChannelName.EMAIL, email, now))
                if n % 10 == 0:
                    addresses.append(_address(recipient_id, ChannelName.PEPPOL,
                                              f"0208:{n:010d}", now))
                    preferences.append(_preference(recipient_id, "invoice", ["peppol"], now))
                elif n % 20 == 5:
                    preferences.append(_preference(recipient_id, "invoice", ["email"], now,
                                                   opted_out=True))
                elif n % 7 == 0:
                    preferences.append(_preference(recipient_id, ALL_TYPES, ["email"], now))
            session.execute(sa.insert(Address.__table__), addresses)
            session.execute(sa.insert(Preference.__table__), preferences)


def _address(recipient_id: int, channel: ChannelName, value: str, now) -> dict:
    return {"recipient_id": recipient_id, "channel": channel, "value": value,
            "value_sha256": hashlib.sha256(value.encode()).hexdigest(), "verified_at": now,
            "created_at": now}


def _preference(recipient_id: int, message_type: str, channels: list[str], now, *,
                opted_out: bool = False) -> dict:
    return {"recipient_id": recipient_id, "message_type": message_type, "channels": channels,
            "opted_out": opted_out, "email_attachments": ["pdf"], "updated_at": now}


def server_cpu_reader(session: Session):
    """A function giving the CPU seconds the session's database backend has used so far.

    Readable only when the database runs on this machine (PostgreSQL's backend
    process in /proc); otherwise the function returns -1. On a shared machine the
    CPU figures say more than the wall time.
    """
    if session.get_bind().dialect.name != "postgresql":
        return lambda: -1.0
    stat = Path(f"/proc/{session.scalar(sa.text('SELECT pg_backend_pid()'))}/stat")
    ticks = os.sysconf("SC_CLK_TCK")

    def read() -> float:
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return -1.0
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    return read


def specs_for(recipients: int, messages: int) -> list[MessageSpec]:
    """``messages`` invoice specs spread evenly over the recipients, unique subjects."""
    return [MessageSpec(
        recipient_key=f"r{i % recipients}", subject_key=f"invoice:bench:{i}",
        parameters={"customer_name": f"Customer {i % recipients}", "number": f"INV-{i}",
                    "amount": "€ 120,15", "due_date": "31 December 2026",
                    "seller_name": "Testing Telecom"},
        link=f"https://portal.example/invoices/INV-{i}") for i in range(messages)]


def run_bench(url: str, recipients: int, messages: int, wave_size: int | None,
              verify: bool) -> None:
    """Populate, time create_run, report, and optionally check the event chain."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        started = time.perf_counter()
        populate(engine, recipients)
        specs = specs_for(recipients, messages)
        print(f"# populated {recipients} recipients and built {messages} specs in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        with Session(engine) as session:
            backend = server_cpu_reader(session)
            server_before, client_before = backend(), time.process_time()
            started = time.perf_counter()
            summary = create_run(session, name="bench", message_type="invoice", specs=specs,
                                 selection={"bench": True}, created_by="bench",
                                 options=WaveOptions(wave_size=wave_size))
            seconds = time.perf_counter() - started
            server_cpu, client_cpu = backend() - server_before, time.process_time() - client_before
            waves = len(summary.run.waves)
            started = time.perf_counter()
            session.commit()
            commit = time.perf_counter() - started
        deliveries = sum(summary.deliveries.values())
        with Session(engine) as session:
            stored = session.scalar(sa.select(sa.func.count()).select_from(Delivery))
            events = session.scalar(sa.select(sa.func.count()).select_from(Event))
            assert stored == deliveries, (stored, deliveries)
            print(f"# {summary.messages_created} messages, {deliveries} deliveries "
                  f"{summary.deliveries}, {summary.fallbacks} fallbacks, {summary.opted_out} "
                  f"opted out, {waves} waves, {events} events")
            if verify:
                started = time.perf_counter()
                broken = verify_chain(session)
                print(f"# event chain {'intact' if broken is None else broken} "
                      f"(verified in {time.perf_counter() - started:.1f} s)")
        print(f"BENCH plan_run_seconds {seconds:.1f} s")
        print(f"BENCH plan_run_deliveries_per_second {deliveries / seconds:.0f} deliveries/s")
        print(f"BENCH plan_run_messages_per_second {summary.messages_created / seconds:.0f} "
              "messages/s")
        print(f"BENCH plan_run_deliveries {deliveries} deliveries")
        print(f"BENCH plan_run_commit_seconds {commit:.1f} s")
        print(f"BENCH plan_run_client_cpu_seconds {client_cpu:.1f} s")
        if server_before >= 0:
            print(f"BENCH plan_run_server_cpu_seconds {server_cpu:.1f} s")
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    """Parse the options, make a database of the benchmark's own, run, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=200_000)
    # About 1.68 deliveries per message: the default makes just over 1,000,000 deliveries.
    parser.add_argument("--messages", type=int, default=596_000)
    parser.add_argument("--wave-size", type=int, default=None,
                        help="deliveries per wave (default: one wave)")
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL URL (default %(default)s)")
    parser.add_argument("--sqlite", action="store_true", help="use a temporary SQLite file")
    parser.add_argument("--verify", action="store_true", help="verify the event chain after")
    args = parser.parse_args(argv)
    if args.sqlite:
        with tempfile.TemporaryDirectory(prefix="herald-bench-") as folder:
            run_bench(f"sqlite:///{folder}/bench.sqlite3", args.recipients, args.messages,
                      args.wave_size, args.verify)
        return
    with own_schema(args.url) as url:
        run_bench(url, args.recipients, args.messages, args.wave_size, args.verify)


@contextlib.contextmanager
def own_schema(url: str, prefix: str = "herald_bench") -> Iterator[str]:
    """A PostgreSQL schema of the benchmark's own: yields a URL that works in it, then drops it."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    admin.dispose()
    try:
        yield (sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
               .render_as_string(hide_password=False))
    finally:
        drop_schema(url, schema)


def drop_schema(url: str, schema: str, attempts: int = 30) -> None:
    """Drop the benchmark's schema, waiting for a restarting database if need be."""
    for attempt in range(attempts):
        engine = sa.create_engine(url)
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            return
        except sa.exc.OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(2)
        finally:
            engine.dispose()


if __name__ == "__main__":
    main()
