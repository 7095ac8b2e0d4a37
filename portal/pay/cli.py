"""``herald payments``: bank lines matched to invoices by reference, and links for operators."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from portal.db import get_database
from portal.models import Invoice, Organisation, Payment
from portal.pay.links import issue_link, link_url
from portal.payment_providers.bank_transfer import record_bank_payment

ACTOR = "cli:payments"
COLUMNS = ("date", "amount", "reference", "bank_reference")


class BankFileError(click.ClickException):
    """A bank file Herald cannot read; the message names the line, the column and the fix."""


@dataclass(frozen=True, slots=True)
class BankLine:
    """One incoming transfer from the bank file."""

    line: int
    received_at: datetime
    amount: Decimal
    reference: str
    bank_reference: str


@click.group("payments")
def payments_group() -> None:
    """Money received, and "review & pay" links."""


def read_bank_file(path: Path) -> list[BankLine]:
    """Read a CSV of incoming transfers (date, amount, reference, bank_reference)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise BankFileError(f"{path.name}: the header lacks {', '.join(missing)}; the "
                                f"first line must name the columns {', '.join(COLUMNS)}")
        lines = []
        for number, row in enumerate(reader, start=2):
            lines.append(_line(path.name, number, row))
    return lines


def _line(name: str, number: int, row: dict[str, str]) -> BankLine:
    where = f"{name} line {number}"
    try:
        day = datetime.strptime((row["date"] or "").strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise BankFileError(f"{where}, date: {row['date']!r} is not a date like "
                            "2026-11-23") from None
    try:
        amount = Decimal((row["amount"] or "").strip())
    except InvalidOperation:
        amount = Decimal(0)
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise BankFileError(f"{where}, amount: {row['amount']!r} must be above 0 with at most "
                            "two decimals and a dot, like 120.15")
    bank_reference = (row["bank_reference"] or "").strip()
    if not bank_reference or len(bank_reference) > 100:
        raise BankFileError(f"{where}, bank_reference: give the bank's own id of the line "
                            "(1 to 100 characters), so a file imported twice counts once")
    return BankLine(number, day, amount, (row["reference"] or "").strip(), bank_reference)


def _organisation(session, organisation_id: int | None) -> Organisation:
    if organisation_id is not None:
        org = session.get(Organisation, organisation_id)
        if org is None:
            raise click.ClickException(f"there is no organisation {organisation_id}")
        return org
    orgs = session.scalars(sa.select(Organisation).limit(2)).all()
    if len(orgs) != 1:
        raise click.ClickException("name the seller with --organisation ID "
                                   f"({'none' if not orgs else 'several'} on this database)")
    return orgs[0]


@payments_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--organisation", "organisation_id", type=int,
              help="The seller whose account received the money (needed with several).")
@with_appcontext
def import_command(path: Path, organisation_id: int | None) -> None:
    """Record incoming transfers from a bank CSV; each is matched to an invoice by reference.

    Columns: date (YYYY-MM-DD), amount, reference (as the payer wrote it), bank_reference
    (the bank's id of the line). A line imported before is skipped; a wrong line stops the
    whole file before anything is recorded.
    """
    lines = read_bank_file(path)
    settings = current_app.config["HERALD"]
    counts = {"matched": 0, "unmatched": 0, "already recorded": 0}
    with get_database().session_scope() as session:
        org = _organisation(session, organisation_id)
        for line in lines:
            known = session.scalars(sa.select(Payment.id).where(
                Payment.provider == "bank",
                Payment.provider_reference == line.bank_reference)).first()
            if known is not None:
                counts["already recorded"] += 1
                continue
            payment = record_bank_payment(
                session, org, amount=line.amount, reference=line.reference,
                received_at=line.received_at, provider_reference=line.bank_reference,
                actor=ACTOR, public_url=settings.public_url,
                link_days=settings.pay_link_days_after_due)
            counts["matched" if payment.invoice_id else "unmatched"] += 1
    click.echo(f"{path.name}: {counts['matched']} matched to invoices (receipts planned), "
               f"{counts['unmatched']} unmatched, {counts['already recorded']} already "
               "recorded.")


@payments_group.command("link")
@click.argument("number")
@click.option("--organisation", "organisation_id", type=int)
@click.option("--reissue", is_flag=True, help="Revoke every earlier link of the invoice.")
@with_appcontext
def link_command(number: str, organisation_id: int | None, reissue: bool) -> None:
    """Print a new "review & pay" link to invoice NUMBER (to give a customer by hand)."""
    settings = current_app.config["HERALD"]
    with get_database().session_scope() as session:
        org = _organisation(session, organisation_id)
        invoice = session.scalars(sa.select(Invoice).where(
            Invoice.organisation_id == org.id, Invoice.number == number)).first()
        if invoice is None or not invoice.ubl_sha256:
            raise click.ClickException(f"there is no issued invoice {number!r}")
        link, token = issue_link(session, invoice, days=settings.pay_link_days_after_due,
                                 purpose="operator", actor=ACTOR, revoke_previous=reissue)
        click.echo(link_url(settings.public_url, token))
        click.echo(f"valid until {link.expires_at:%Y-%m-%d %H:%M} UTC", err=True)
