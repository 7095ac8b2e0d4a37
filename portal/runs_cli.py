"""``herald runs``, ``herald waves``, ``herald dispatcher`` and ``herald audit``."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import date, timedelta

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext

from distribution.dispatcher import run_dispatcher
from distribution.documents import DocumentIntegrityError, StoredDocument, make_store
from distribution.events import EventChainHead, verify_chain
from distribution.feedback import UnknownRecipient, record_contact
from distribution.reconciler import reconcile
from distribution.runs import (
    RunError,
    WaveOptions,
    cancel_wave,
    pause_wave,
    set_rate,
    start_wave,
    wave_counts,
)
from distribution.waves import ContactSource, Run
from portal.db import get_database
from portal.issuing import invoice_key
from portal.models import Customer, CustomerKind, DocumentKind, Invoice
from portal.queue import get_tasks
from portal.recipients_sync import recipient_key
from portal.runs import RunSelection, create_document_run

ACTOR = "cli"


@click.group("runs")
def runs_group() -> None:
    """Runs: batches of documents sent in paced waves."""


@runs_group.command("create")
@click.option("--kind", type=click.Choice([k.value for k in DocumentKind]), default="invoice",
              show_default=True)
@click.option("--from", "issued_from", type=click.DateTime(["%Y-%m-%d"]),
              help="Issued on or after this date.")
@click.option("--to", "issued_to", type=click.DateTime(["%Y-%m-%d"]),
              help="Issued on or before this date.")
@click.option("--segment", type=click.Choice([k.value for k in CustomerKind]),
              help="Only consumers or only businesses.")
@click.option("--unpaid-only", is_flag=True)
@click.option("--name", default=None, help="A name operators will recognise.")
@click.option("--wave-size", type=int, help="Deliveries per wave (default: one wave).")
@click.option("--rate", "rate_per_minute", type=float, default=60.0, show_default=True,
              help="Releases per minute when no capacity plan is given.")
@click.option("--capacity", "capacity_per_hour", type=float,
              help="Contacts per hour support can take; with --contact-rate, plans the waves.")
@click.option("--contact-rate", type=float, help="Expected contacts per delivered message.")
@click.option("--window", default="8-20", show_default=True,
              help="Send window in the customer's local hours, e.g. 8-20.")
@click.option("--weekends", is_flag=True, help="Also send on Saturday and Sunday.")
@click.option("--start", is_flag=True, help="Start the first wave at once.")
@click.option("--wave-by-wave", is_flag=True,
              help="Start each wave yourself (by default the next wave starts when one is "
                   "done).")
@with_appcontext
def create_command(kind, issued_from, issued_to, segment, unpaid_only, name, wave_size,
                   rate_per_minute, capacity_per_hour, contact_rate, window, weekends,
                   start, wave_by_wave) -> None:
    """Create a run over issued documents, split into waves."""
    start_hour, _, end_hour = window.partition("-")
    if not (start_hour.isdigit() and end_hour.isdigit()):
        raise click.BadParameter("write the window as START-END hours, e.g. 8-20",
                                 param_hint="--window")
    selection = RunSelection(
        kind=DocumentKind(kind),
        issued_from=issued_from.date() if issued_from else None,
        issued_to=issued_to.date() if issued_to else None,
        customer_kind=CustomerKind(segment) if segment else None, unpaid_only=unpaid_only)
    options = WaveOptions(
        wave_size=wave_size, rate_per_minute=rate_per_minute,
        window_start_hour=int(start_hour), window_end_hour=int(end_hour),
        weekdays=tuple(range(7)) if weekends else (0, 1, 2, 3, 4),
        capacity_per_hour=capacity_per_hour, contact_rate=contact_rate,
        auto_continue=not wave_by_wave)
    settings = current_app.config["HERALD"]
    try:
        with get_database().session_scope() as session:
            summary = create_document_run(
                session, selection, options, public_url=settings.public_url, created_by=ACTOR,
                link_days=settings.pay_link_days_after_due,
                name=name or f"{kind.replace('_', ' ')}s {date.today().isoformat()}")
            run_id = summary.run.id
            waves = [wave.id for wave in summary.run.waves]
            if start and waves:
                start_wave(session, waves[0], actor=ACTOR)
    except RunError as exc:
        raise click.ClickException(str(exc)) from exc
    channels = ", ".join(f"{channel} {count}" for channel, count in
                         sorted(summary.deliveries.items())) or "none"
    click.echo(f"Run {run_id}: {summary.messages_created} messages "
               f"({summary.messages_existing} already sent before), deliveries: {channels}; "
               f"{summary.fallbacks} fallbacks, {summary.opted_out} opted out; "
               f"waves {', '.join(map(str, waves))}" + (" (first started)" if start else ""))


@runs_group.command("list")
@with_appcontext
def list_command() -> None:
    """List runs with their waves' states."""
    with get_database().session_scope() as session:
        for run in session.scalars(sa.select(Run).order_by(Run.id.desc()).limit(50)):
            states = ", ".join(f"{w.id}:{w.state.value}" for w in run.waves)
            click.echo(f"{run.id:>5}  {run.created_at:%Y-%m-%d %H:%M}  {run.message_type:<12} "
                       f"{run.name}  [{states}]")


@runs_group.command("show")
@click.argument("run_id", type=int)
@with_appcontext
def show_command(run_id: int) -> None:
    """Show a run's waves, their rate, window and deliveries per state."""
    with get_database().session_scope() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise click.ClickException(f"there is no run {run_id}")
        click.echo(f"Run {run.id} {run.name!r} ({run.message_type}), created {run.created_at:%c} "
                   f"by {run.created_by}")
        for wave in run.waves:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(wave_counts(session,
                                                                        wave.id).items()))
            click.echo(f"  wave {wave.id}: {wave.state.value}, {wave.rate_per_minute:g}/min, "
                       f"window {wave.window_start_hour}-{wave.window_end_hour}h; {counts}"
                       + (f"; paused: {wave.pause_reason}" if wave.pause_reason else ""))


@click.group("waves")
def waves_group() -> None:
    """Start, pause, resume, cancel or re-rate a wave."""


def _wave_action(action, wave_id: int, **kwargs) -> None:
    try:
        with get_database().session_scope() as session:
            action(session, wave_id, actor=ACTOR, **kwargs)
    except RunError as exc:
        raise click.ClickException(str(exc)) from exc


@waves_group.command("start")
@click.argument("wave_id", type=int)
@with_appcontext
def wave_start(wave_id: int) -> None:
    """Start releasing a draft wave."""
    _wave_action(start_wave, wave_id)
    click.echo(f"Wave {wave_id} is running.")


@waves_group.command("pause")
@click.argument("wave_id", type=int)
@click.option("--reason", default="paused by an operator", show_default=True)
@with_appcontext
def wave_pause(wave_id: int, reason: str) -> None:
    """Pause a running wave (takes effect within one dispatcher tick)."""
    _wave_action(pause_wave, wave_id, reason=reason)
    click.echo(f"Wave {wave_id} is paused.")


@waves_group.command("resume")
@click.argument("wave_id", type=int)
@with_appcontext
def wave_resume(wave_id: int) -> None:
    """Resume a paused wave."""
    _wave_action(start_wave, wave_id)
    click.echo(f"Wave {wave_id} is running again.")


@waves_group.command("cancel")
@click.argument("wave_id", type=int)
@click.option("--reason", default="cancelled by an operator", show_default=True)
@with_appcontext
def wave_cancel(wave_id: int, reason: str) -> None:
    """Cancel what a wave has not sent yet."""
    _wave_action(cancel_wave, wave_id, reason=reason)
    click.echo(f"Wave {wave_id} is cancelled.")


@waves_group.command("rate")
@click.argument("wave_id", type=int)
@click.argument("per_minute", type=float)
@with_appcontext
def wave_rate(wave_id: int, per_minute: float) -> None:
    """Change a wave's release rate (releases per minute)."""
    _wave_action(set_rate, wave_id, rate_per_minute=per_minute)
    click.echo(f"Wave {wave_id} now releases {per_minute:g} per minute.")


@click.command("dispatcher")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between ticks.")
@click.option("--reconcile-every", default=60.0, show_default=True,
              help="Seconds between reconciler passes (expired leases, deliveries in doubt).")
@with_appcontext
def dispatcher_command(interval: float, reconcile_every: float) -> None:
    """Release deliveries of running waves at their rate (one active dispatcher at a time)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo("Dispatcher started; it waits for the lock if another one is active.")
    start_dispatcher_loop(current_app._get_current_object(), stop, interval=interval,
                          reconcile_every=reconcile_every)


def start_dispatcher_loop(app: Flask, stop: threading.Event, *, interval: float = 1.0,
                          reconcile_every: float = 60.0) -> None:
    """Run the dispatcher (with the reconciler every minute) until ``stop`` is set."""
    database = get_database(app)
    tasks = get_tasks(app)
    settings = app.config["HERALD"]

    def reconcile_once() -> None:
        with database.session_scope() as session:
            reconcile(session)

    run_dispatcher(database.sessionmaker, database.engine, lambda delivery_id: tasks.send(
        delivery_id), interval=interval, should_stop=stop.is_set, reconcile=reconcile_once,
        reconcile_every=reconcile_every,
        release_lease=timedelta(seconds=settings.release_lease_seconds),
        enqueue_batch=lambda delivery_ids: tasks.send_batch(delivery_ids))


@click.group("contacts")
def contacts_group() -> None:
    """Customer contacts that steer the waves (calls, questions, disputes)."""


@contacts_group.command("record")
@click.argument("customer_number")
@click.option("--source", type=click.Choice([s.value for s in ContactSource]), default="call",
              show_default=True)
@click.option("--invoice", "invoice_number", help="The invoice or credit note it is about.")
@with_appcontext
def contact_record(customer_number: str, source: str, invoice_number: str | None) -> None:
    """Record that a customer contacted support about what Herald sent them."""
    with get_database().session_scope() as session:
        customer = session.scalars(sa.select(Customer).where(
            Customer.number == customer_number)).first()
        if customer is None:
            raise click.ClickException(f"there is no customer {customer_number}")
        subject = None
        if invoice_number:
            invoice = session.scalars(sa.select(Invoice).where(
                Invoice.customer_id == customer.id, Invoice.number == invoice_number)).first()
            if invoice is None:
                raise click.ClickException(f"customer {customer_number} has no document "
                                           f"{invoice_number}")
            subject = f"{invoice.kind.value}:{invoice_key(invoice)}"
        try:
            contact = record_contact(session, recipient_key(customer), ContactSource(source),
                                     subject_key=subject, actor=ACTOR)
        except UnknownRecipient as exc:
            raise click.ClickException(f"Herald has sent nothing to {customer_number} yet") \
                from exc
        wave = contact.wave_id
    click.echo("Contact recorded" + (f" against wave {wave}." if wave else
                                      " (no wave reached this customer)."))


@click.group("audit")
def audit_group() -> None:
    """Evidence checks."""


@audit_group.command("trail")
@click.argument("number")
@click.option("--customer", help="The customer's number, when sellers share invoice numbers.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of lines.")
@with_appcontext
def audit_trail(number: str, customer: str | None, as_csv: bool) -> None:
    """What happened to invoice NUMBER: every event from creation to delivery and payment."""
    from portal.audit_trail import describe, find_invoice, invoice_trail, trail_csv

    with get_database().session_scope() as session:
        found = find_invoice(session, number, customer=customer)
        if not found:
            raise click.ClickException(f"there is no document {number!r}"
                                       + (f" for customer {customer!r}" if customer else ""))
        if len(found) > 1:
            raise click.ClickException(f"{len(found)} documents are numbered {number!r}; "
                                       "name the customer with --customer")
        entries = invoice_trail(session, found[0])
        if as_csv:
            click.echo(trail_csv(entries), nl=False)
            return
        for entry in entries:
            event = entry.event
            click.echo(f"{event.at:%Y-%m-%d %H:%M:%S}  {entry.about:<32} {event.kind:<24} "
                       f"{event.actor:<28} {describe(event)}")
        click.echo(f"{len(entries)} events.")


@audit_group.command("verify")
@with_appcontext
def audit_verify() -> None:
    """Check the event log's hash chain and every stored document's hash."""
    settings = current_app.config["HERALD"]
    store = make_store(settings.document_store, settings.instance_path)
    problems = []
    with get_database().session_scope() as session:
        broken = verify_chain(session)
        if broken is not None:
            problems.append(f"the event log is broken at event {broken.event_id}: "
                            f"{broken.reason}")
        events = session.scalar(sa.select(EventChainHead.count)) or 0
        hashes = list(session.scalars(sa.select(StoredDocument.sha256)))
        for digest in hashes:
            try:
                store.get(session, digest)
            except (DocumentIntegrityError, OSError) as exc:
                problems.append(f"document {digest}: {exc}")
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise SystemExit(1)
    click.echo(f"The event log is intact ({events} events) and all {len(hashes)} stored "
               "documents match their hashes.")
