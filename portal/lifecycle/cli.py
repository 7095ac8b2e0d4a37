"""``herald lifecycle purge|export|erase|hold``: retention, legal holds and GDPR requests."""

from __future__ import annotations

import getpass
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from distribution.documents import make_store
from portal.db import get_database
from portal.lifecycle.gdpr import ErasureRefused, erase_customer, export_customer
from portal.lifecycle.holds import HoldError, active_holds, place_hold, release_hold
from portal.lifecycle.retention import RetentionPolicy, purge, remove_files
from portal.models import Customer, Invoice


def _actor(by: str | None) -> str:
    return f"cli:{by or getpass.getuser()}"


def find_customer(session, ref: str) -> Customer:
    """A customer by number, or by ``#<id>`` when numbers repeat across sellers."""
    if ref.startswith("#") and ref[1:].isdigit():
        customer = session.get(Customer, int(ref[1:]))
        if customer is None:
            raise click.ClickException(f"no customer with id {ref[1:]}")
        return customer
    found = list(session.scalars(sa.select(Customer).where(Customer.number == ref)))
    if not found:
        raise click.ClickException(f"no customer numbered {ref!r}; check the number")
    if len(found) > 1:
        ids = ", ".join(f"#{c.id}" for c in found)
        raise click.ClickException(f"several sellers have a customer {ref!r} ({ids}); "
                                   "name one by its #id")
    return found[0]


@click.group("lifecycle")
def lifecycle_group() -> None:
    """Retention, legal holds, and GDPR access and erasure."""


@lifecycle_group.command("purge")
@click.option("--dry-run", is_flag=True, help="Report what would be removed; remove nothing.")
@with_appcontext
def purge_command(dry_run: bool) -> None:
    """Remove records past their retention (never held or in-retention ones)."""
    settings = current_app.config["HERALD"]
    policy = RetentionPolicy.from_settings(settings)
    store = make_store(settings.document_store, settings.instance_path)
    database = get_database()
    with database.sessionmaker() as session, session.begin():
        report = purge(session, policy, dry_run=dry_run, actor=_actor(None))
        if dry_run:
            session.rollback()
    if not dry_run:
        remove_files(store, report.documents)
    verb = "would remove" if dry_run else "removed"
    if not report.removed:
        click.echo(f"Nothing to purge ({verb} 0 records).")
    for name, count in sorted(report.removed.items()):
        click.echo(f"{verb} {count} {name}")
    click.echo(f"kept {report.kept_on_hold} invoices past retention under a legal hold")


@lifecycle_group.command("export")
@click.argument("customer")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The zip file to write (customer.json and documents/).")
@click.option("--by", help="Who asks (recorded in the event log); default: your user name.")
@with_appcontext
def export_command(customer: str, out: Path, by: str | None) -> None:
    """Export one customer's data (GDPR access): CUSTOMER is a number or #id."""
    settings = current_app.config["HERALD"]
    store = make_store(settings.document_store, settings.instance_path)
    with get_database().session_scope() as session:
        record = find_customer(session, customer)
        data = export_customer(session, record, store, actor=_actor(by))
        out.write_bytes(data)
    click.echo(f"Wrote {out} ({len(data)} bytes).")


@lifecycle_group.command("erase")
@click.argument("customer")
@click.option("--reason", required=True, help="The ground for erasure (recorded).")
@click.option("--by", help="Who erases (recorded in the event log); default: your user name.")
@with_appcontext
def erase_command(customer: str, reason: str, by: str | None) -> None:
    """Erase one customer's personal data, keeping the fiscal record."""
    with get_database().session_scope() as session:
        record = find_customer(session, customer)
        try:
            counts = erase_customer(session, record, reason=reason, actor=_actor(by))
        except ErasureRefused as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"Erased customer {customer}: " + ", ".join(
        f"{count} {name}" for name, count in counts.items() if count))
    click.echo("Kept: issued invoices with their stored UBL and PDF, payments, the event log.")


@lifecycle_group.group("hold")
def hold_group() -> None:
    """Legal holds: while one is active, nothing it covers is purged or erased."""


@hold_group.command("place")
@click.option("--customer", help="A customer number or #id.")
@click.option("--invoice", help="An invoice number.")
@click.option("--reason", required=True, help="Why (e.g. a court case or audit reference).")
@click.option("--by", help="Who places it; default: your user name.")
@with_appcontext
def hold_place(customer: str | None, invoice: str | None, reason: str, by: str | None) -> None:
    """Place a hold on a customer or an invoice."""
    with get_database().session_scope() as session:
        target_customer = find_customer(session, customer) if customer else None
        target_invoice = None
        if invoice:
            found = list(session.scalars(sa.select(Invoice).where(Invoice.number == invoice)))
            if len(found) != 1:
                raise click.ClickException(f"invoice number {invoice!r} matches "
                                           f"{len(found)} invoices; it must match one")
            target_invoice = found[0]
        try:
            hold = place_hold(session, reason=reason, actor=_actor(by),
                              customer=target_customer, invoice=target_invoice)
        except HoldError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"Legal hold {hold.id} placed.")


@hold_group.command("release")
@click.argument("hold_id", type=int)
@click.option("--by", help="Who releases it; default: your user name.")
@with_appcontext
def hold_release(hold_id: int, by: str | None) -> None:
    """Release a hold (its record stays)."""
    with get_database().session_scope() as session:
        try:
            release_hold(session, hold_id, actor=_actor(by))
        except HoldError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"Legal hold {hold_id} released.")


@hold_group.command("list")
@with_appcontext
def hold_list() -> None:
    """The active holds."""
    with get_database().session_scope() as session:
        holds = active_holds(session)
        if not holds:
            click.echo("No active legal holds.")
        for hold in holds:
            subject = (f"customer #{hold.customer_id}" if hold.customer_id
                       else f"invoice #{hold.invoice_id}")
            click.echo(f"{hold.id}\t{subject}\t{hold.placed_at:%Y-%m-%d}\t{hold.placed_by}\t"
                       f"{hold.reason}")
