"""Scale test (issue 8): a million invoices for 200,000 customers on PostgreSQL.

1. **Data**: the demo's template (200 customers, five months, UBL stored) is
   seeded through the product and multiplied inside PostgreSQL
   (:mod:`scale_data`) to ``--factor`` times its size: 1,000,000 invoices and
   200,000 customers by default. Emails carry the "review & pay" link without
   attachments and no e-invoice embeds its PDF here, so no PDF is rendered (what
   rendering and attaching cost is bench/pdf_*.py's and bench/email_vs_smtplib.py's
   subject); Peppol deliveries still read their stored UBL.
2. **Planning**: one run over every issued invoice through
   :func:`portal.runs.create_document_run`, the path the ops console and the API
   take (recipients synced, pay links made, preferences resolved, deliveries and
   events written, waves cut), split into three waves.
3. **Sending**: null channels for all five channels (``send`` returns at once), the
   real dispatcher process and real send tasks; wave 1 goes out with 1 worker
   process, wave 2 with 2, wave 3 with 4 (``--workers``). Each wave's deliveries per
   second and CPU per delivery are printed, and the event chain is verified after.
4. **Portal under load**: gunicorn with Herald's production settings
   (portal/gunicorn_config.py: ``--web-workers`` processes of ``--threads`` threads;
   ``--threads 1`` for gunicorn's sync workers) serves the portal; wrk (Debian)
   plays ``--users`` signed-in customers, each opening their invoice list or one
   of their invoices about once a second (``--think-ms``), for ``--seconds``: p50
   and p95 latency. ``--portal-only`` skips steps 2 and 3.
   The SQL statements each page runs are counted in-process.

Reproduce (from the repository root; needs ``pip install -e '.[bench]'`` and
``apt-get install wrk``; the schema is dropped afterwards)::

    .venv/bin/python bench/scale.py                    # the full size, about 30 minutes
    .venv/bin/python bench/scale.py --template-customers 20 --factor 10  # a quick look

Prints ``BENCH <name> <value> <unit>`` lines. Goals: deliveries per second grow with
workers; portal p95 under 50 ms; no page's query count grows with the data (no N+1).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plan_run import DEFAULT_URL, own_schema, server_cpu_reader  # bench/ is on sys.path
from scale_data import multiply
from scale_load import add_load_arguments, load_portal, sign_ins
from send_throughput import dispatcher_process, own_backends, process_cpu, worker_process

from distribution.deliveries import Delivery, DeliveryState
from distribution.documents import DatabaseStore
from distribution.events import Event, verify_chain
from distribution.runs import WaveOptions, start_wave
from distribution.sqltypes import utcnow
from portal.db import make_engine
from portal.demo.seed import seed_demo
from portal.migrate import upgrade
from portal.models import DocumentKind
from portal.runs import RunSelection, create_document_run

UNFINISHED = (DeliveryState.PENDING, DeliveryState.RELEASED, DeliveryState.SENDING)
PUBLIC_URL = "http://127.0.0.1:5000"


def make_data(engine: sa.Engine, instance: Path, factor: int,
              template_customers: int) -> dict[str, int]:
    """Seed the demo template, render its PDFs, multiply it; returns the row counts."""
    started = time.perf_counter()
    with Session(engine) as session:
        seed_demo(session, instance, DatabaseStore(), customers=template_customers,
                  months=5)
        session.commit()
    with engine.begin() as connection:
        # Link-only emails (see the module docstring): every customer's choice kept,
        # the attachments dropped; customers without a choice get the default channels.
        # No message then needs a PDF, so none is rendered (bench/pdf_*.py measure that).
        connection.execute(sa.text("UPDATE preferences SET email_attachments = '[]'"))
        connection.execute(sa.text("UPDATE customers SET embed_pdf_in_ubl = false"))
        connection.execute(sa.text(
            "INSERT INTO preferences (recipient_id, message_type, channels, opted_out, "
            "email_attachments, updated_at) SELECT id, '*', '[\"email\", \"portal\"]', false, "
            "'[]', :now FROM recipients WHERE id NOT IN (SELECT recipient_id FROM preferences)"),
            {"now": utcnow()})
    print(f"# template seeded in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    started = time.perf_counter()
    with engine.begin() as connection:
        counts = multiply(connection, factor)
    print(f"# multiplied by {factor} in {time.perf_counter() - started:.0f} s: {counts}",
          file=sys.stderr)
    return counts


def plan(engine: sa.Engine, invoices: int) -> list[int]:
    """One run over every issued invoice, three waves; prints its figures, returns wave ids."""
    options = WaveOptions(wave_size=math.ceil(invoices * 0.75),  # ~2 deliveries each
                          rate_per_minute=6e7,
                          window_start_hour=0, window_end_hour=24,
                          weekdays=tuple(range(7)), auto_continue=False)
    with Session(engine) as session:
        backend = server_cpu_reader(session)
        server_before, client_before = backend(), time.process_time()
        started = time.perf_counter()
        summary = create_document_run(session, RunSelection(kind=DocumentKind.INVOICE), options,
                                      name="scale", public_url=PUBLIC_URL, created_by="bench")
        session.commit()
        seconds = time.perf_counter() - started
        waves = [wave.id for wave in summary.run.waves]
        deliveries = sum(summary.deliveries.values())
    print(f"# planned {summary.messages_created} messages, {deliveries} deliveries "
          f"{summary.deliveries}, {len(waves)} waves", file=sys.stderr)
    print(f"BENCH scale_plan_seconds {seconds:.1f} s")
    print(f"BENCH scale_plan_deliveries {deliveries} deliveries")
    print(f"BENCH scale_plan_client_cpu_seconds {time.process_time() - client_before:.1f} s")
    print(f"BENCH scale_plan_server_cpu_seconds {backend() - server_before:.1f} s")
    return waves


def send_wave(url: str, engine: sa.Engine, wave_id: int, sequence: int, workers: int) -> None:
    """Start the wave, send it with ``workers`` processes and the dispatcher; print figures.

    The processes' connections carry an ``application_name`` of their own, so the
    server CPU counted is theirs alone, not that of anything else on the machine.
    """
    with Session(engine) as session, session.begin():
        start_wave(session, wave_id, actor="bench")
        total = session.scalar(sa.select(sa.func.count()).select_from(Delivery).where(
            Delivery.wave_id == wave_id))
    tag = f"herald_scale_{uuid.uuid4().hex[:10]}"
    tagged = (sa.make_url(url).update_query_dict({"application_name": tag})
              .render_as_string(hide_password=False))
    context = multiprocessing.get_context("spawn")
    tasks, stop, go = context.Queue(), context.Event(), context.Event()
    processes = [context.Process(target=worker_process, args=(tagged, tasks, stop, False, True))
                 for _ in range(workers)]
    dispatcher = context.Process(target=dispatcher_process, args=(tagged, tasks, stop, go, 100))
    for process in [*processes, dispatcher]:
        process.start()
    # The clock starts once every process has imported and connected (on a busy
    # machine importing alone can take longer than a small wave's sending).
    deadline = time.monotonic() + 300
    while len(own_backends(engine, tag)) < workers + 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    server_before = {pid: process_cpu(pid) for pid in own_backends(engine, tag)}
    own_before = sum(process_cpu(process.pid) for process in [*processes, dispatcher])
    started = time.perf_counter()
    go.set()
    left = total
    while left:
        time.sleep(0.5)
        with engine.connect() as connection:
            left = connection.scalar(sa.select(sa.func.count()).select_from(Delivery).where(
                Delivery.wave_id == wave_id, Delivery.state.in_(UNFINISHED)))
    elapsed = time.perf_counter() - started
    server_cpu = sum(process_cpu(pid) - server_before.get(pid, 0.0)
                     for pid in own_backends(engine, tag))
    own_cpu = sum(process_cpu(process.pid) for process in [*processes, dispatcher]) - own_before
    stop.set()
    for process in [dispatcher, *processes]:
        process.join(30)
    per = 1000 / max(total, 1)
    name = f"scale_send_wave{sequence}_{workers}_workers"
    print(f"BENCH {name} {total / elapsed:.0f} deliveries/s")
    print(f"BENCH {name}_cpu {(own_cpu + server_cpu) * per:.3f} ms/delivery")
    print(f"# wave {wave_id}: {total} deliveries in {elapsed:.0f} s with {workers} workers",
          file=sys.stderr)


def run(url: str, factor: int, template_customers: int, workers: list[int],
        web_workers: int, users: int, seconds: int, think_ms: int, threads: int = 4,
        send: bool = True, compare_sync: int = 0) -> None:
    """The whole scale test in the schema ``url`` points at (without ``send``: data, portal)."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        with tempfile.TemporaryDirectory(prefix="herald-scale-") as instance:
            counts = make_data(engine, Path(instance), factor, template_customers)
            print(f"BENCH scale_invoices {counts['invoices']} documents")
            print(f"BENCH scale_customers {counts['customers']} customers")
            if send:
                send_all(url, engine, counts["invoices"], workers)
            env = {**os.environ, "DATABASE_URL": url, "HERALD_INSTANCE_PATH": instance,
                   "SECRET_KEY": uuid.uuid4().hex, "HERALD_PUBLIC_URL": PUBLIC_URL,
                   "SIGN_IN_LIMIT_PER_ADDRESS": "100000"}
            customers = sign_ins(env, users)
            load_portal(env, customers, web_workers=web_workers, seconds=seconds,
                        think_ms=think_ms, threads=threads)
            if compare_sync:
                load_portal(env, customers, web_workers=compare_sync, seconds=seconds,
                            think_ms=think_ms, threads=1)
    finally:
        engine.dispose()


def send_all(url: str, engine: sa.Engine, invoices: int, workers: list[int]) -> None:
    """Plan one run over every invoice, send its waves, and check the chain and the log."""
    waves = plan(engine, invoices)
    for position, wave_id in enumerate(waves):
        send_wave(url, engine, wave_id, position + 1, workers[min(position, len(workers) - 1)])
    with Session(engine) as session:
        started = time.perf_counter()
        broken = verify_chain(session)
        print(f"# event chain {'intact' if broken is None else broken} (verified in "
              f"{time.perf_counter() - started:.0f} s)", file=sys.stderr)
        left = session.scalar(sa.select(sa.func.count()).select_from(Delivery).where(
            Delivery.state.in_(UNFINISHED)))
        print(f"# deliveries not finished: {left}", file=sys.stderr)
        steps = session.execute(sa.select(Event.kind, sa.func.count()).where(
            Event.kind.startswith("delivery.")).group_by(Event.kind)).all()
        print(f"# delivery events: {dict(steps)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Parse the options, make a schema of the benchmark's own, run, drop it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factor", type=int, default=1000,
                        help="copies of the template (default %(default)s)")
    parser.add_argument("--template-customers", type=int, default=200,
                        help="demo customers in the template, five invoices each")
    parser.add_argument("--workers", default="1,2,4", help="worker processes per wave")
    parser.add_argument("--portal-only", action="store_true",
                        help="skip planning and sending: the data, then the portal under load")
    add_load_arguments(parser)
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL URL (default %(default)s)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is missing: apt-get install wrk")
    with own_schema(args.url, prefix="herald_scale") as url:
        run(url, args.factor, args.template_customers,
            [int(n) for n in args.workers.split(",")], args.web_workers, args.users,
            args.seconds, args.think_ms, threads=args.threads, send=not args.portal_only,
            compare_sync=args.compare_sync)


if __name__ == "__main__":
    main()
