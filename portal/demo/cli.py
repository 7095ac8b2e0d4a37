"""``herald demo``: the embedded Herald with demo data, web server and worker in one process."""

from __future__ import annotations

import os
import threading
import time
from datetime import date

import click
from flask import current_app
from flask.cli import with_appcontext

from distribution.documents import make_store
from portal import create_app
from portal.cli import run_consumer, serve_in_background
from portal.config import Settings
from portal.db import get_database
from portal.demo.mail_sink import start_mail_sink
from portal.demo.push_sinks import DemoPushState, FcmSink, WebPushSink, keep_lookups_local
from portal.demo.seed import (
    demo_run,
    is_seeded,
    read_sign_ins,
    repoint_demo_subscriptions,
    seed_demo,
)
from portal.migrate import upgrade
from portal.runs_cli import start_dispatcher_loop
from portal.tasks import enqueue_pdf_rendering, unrendered_invoice_ids


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--seed-only", is_flag=True, help="Create or upgrade the database and seed it, "
                                                "then exit.")
@click.option("--customers", default=200, show_default=True, type=click.IntRange(1, 200_000),
              help="How many demo customers to seed (first start only); 10000 with "
                   "--months 2 gives a run of about 10,000 invoices.")
@click.option("--months", default=5, show_default=True, type=click.IntRange(2, 24),
              help="Months of invoice history to seed, this one included (first start "
                   "only); the demo run sends last month's.")
@with_appcontext
def demo_command(host: str, port: int, seed_only: bool, customers: int, months: int) -> None:
    """Create or upgrade the embedded database, seed demo data once, then serve and work."""
    app = current_app._get_current_object()
    settings = app.config["HERALD"]
    database = get_database()
    upgrade(database.engine)
    with database.session_scope() as session:
        if not is_seeded(session):
            started = time.monotonic()
            click.echo(f"Seeding demo data (a seller, {customers:,} customers, {months} "
                       "months of invoices)...")
            seed_demo(session, settings.instance_path,
                      make_store(settings.document_store, settings.instance_path),
                      customers=customers, months=months)
            summary = demo_run(session, date.today(), settings.public_url)
            click.echo(f"Seeded in {time.monotonic() - started:.1f} s; run {summary.run.id} "
                       f"sends {summary.messages_created} invoices from last month.")
    # After the commit; the worker renders the PDFs beside the web server (or on the next start).
    with database.session_scope() as session:
        enqueue_pdf_rendering(app, unrendered_invoice_ids(session))
    if seed_only:
        return
    # Channels point at safe local sinks unless the user configured real ones.
    sink = None
    overrides = {}
    if settings.smtp is None:
        sink, sink_port = start_mail_sink(settings.instance_path)
        overrides.update(MAIL_FROM="billing@helder.example", MAIL_FROM_NAME="Helder",
                         SMTP_HOST="127.0.0.1", SMTP_PORT=str(sink_port))
    if not os.environ.get("HERALD_PUBLIC_URL"):
        overrides["HERALD_PUBLIC_URL"] = f"http://{host}:{port}"
    if settings.peppol_outbox is None and settings.peppol_api_url is None:
        overrides["PEPPOL_OUTBOX"] = str(settings.instance_path / "demo-peppol-outbox")
    push_sinks = _start_push_sinks(settings, overrides)
    demo_app = create_app({**overrides, "HERALD_INSTANCE_PATH": str(settings.instance_path)})
    serve_in_background(demo_app, host, port)
    stop = threading.Event()
    dispatcher = threading.Thread(target=start_dispatcher_loop, args=(demo_app, stop),
                                  name="herald-dispatcher", daemon=True)
    dispatcher.start()
    click.echo(f"\nHerald demo: http://{host}:{port}/\n")
    click.echo("Sign in as:")
    for sign_in in read_sign_ins(settings.instance_path):
        click.echo(f"  {sign_in.role:<20} {sign_in.email:<40} password: {sign_in.password}")
    if sink is not None:
        click.echo(f"\nEmails go to a local mailbox: {settings.instance_path / 'demo-mail'}")
    for push_sink in push_sinks:
        click.echo(f"{push_sink.title} go to a local push service: {push_sink.folder}")
    click.echo("\nPress Ctrl+C to stop.")
    try:
        run_consumer(demo_app, workers=2)
    finally:
        stop.set()
        dispatcher.join(timeout=5)
        if sink is not None:
            sink.stop()
        for push_sink in push_sinks:
            push_sink.stop()


def _start_push_sinks(settings: Settings, overrides: dict[str, str]) -> list[WebPushSink | FcmSink]:
    """Start the local web push and FCM services the user has not replaced with real ones.

    Web push to the demo's subscriptions needs the sink whatever is configured
    (their endpoints are on loopback), so it always runs; FCM only when no
    service account is configured. Adds the settings that point channels at them.
    """
    state = DemoPushState(settings.instance_path)
    sinks: list[WebPushSink | FcmSink] = []
    web_push = WebPushSink(state).start()
    sinks.append(web_push)
    database = get_database()
    with database.session_scope() as session:
        moved = repoint_demo_subscriptions(session, state)
    if moved:
        click.echo(f"The demo push service moved to {web_push.origin}; "
                   f"{moved} subscriptions follow it.")
    if not settings.vapid_subject:
        overrides["VAPID_SUBJECT"] = "mailto:billing@helder.example"
    overrides["WEB_PUSH_ALLOW_HTTP"] = "true"  # the sink is plain http on loopback
    if settings.fcm_service_account_file is None:
        fcm = FcmSink(state).start()
        keep_lookups_local(fcm)
        sinks.append(fcm)
        overrides.update(FCM_SERVICE_ACCOUNT_FILE=str(fcm.service_account_file),
                         FCM_API_URL=fcm.origin)
    return sinks
