"""``herald signatures``: ask people to sign a document, and remind or expire requests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from portal.db import get_database
from portal.models import Customer, Invoice, RequestStatus, SignatureRequest, SigningMode
from portal.signing.context import SigningContext
from portal.signing.reminders import remind_and_expire
from portal.signing.requests import (
    SignerInput,
    SigningError,
    request_invoice_signatures,
    request_upload_signatures,
    signing_link,
)

ACTOR = "cli"


@click.group("signatures")
def signatures_group() -> None:
    """Signature and acknowledgement requests."""


@signatures_group.command("request")
@click.argument("number", required=False)
@click.option("--signer", "signers", multiple=True, required=True, metavar="EMAIL",
              help="Who signs, in order; repeat for more signers.")
@click.option("--mode", type=click.Choice([m.value for m in SigningMode]), default="sign",
              show_default=True)
@click.option("--text", "consent_text", required=True,
              help="The consent text every signer agrees to.")
@click.option("--pdf", "pdf_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Sign this PDF (an adjustment, a refund authorisation) instead of the "
                   "invoice's own PDF.")
@click.option("--title", help="The uploaded PDF's title, e.g. 'Refund authorisation'.")
@click.option("--customer", "customer_number",
              help="The customer an uploaded PDF concerns (when no invoice NUMBER is given).")
@click.option("--organisation", "organisation_id", type=int,
              help="The seller, when several sellers use the same numbers.")
@click.option("--show-links", is_flag=True,
              help="Print the first signer's link (for testing; it is also sent).")
@with_appcontext
def request_command(number, signers, mode, consent_text, pdf_file, title, customer_number,
                    organisation_id, show_links) -> None:
    """Ask the signers, in order, to sign or acknowledge invoice NUMBER (or --pdf)."""
    if not number and not pdf_file:
        raise click.UsageError("give an invoice NUMBER, or --pdf FILE with --customer")
    context = SigningContext.from_app()
    people = [SignerInput(email) for email in signers]
    try:
        with get_database().session_scope() as session:
            invoice = _invoice(session, number, organisation_id) if number else None
            if pdf_file:
                customer = invoice.customer if invoice else _customer(
                    session, customer_number, organisation_id)
                request = request_upload_signatures(
                    session, customer, pdf_file.read_bytes(),
                    title=title or pdf_file.stem, signers=people, mode=SigningMode(mode),
                    consent_text=consent_text, actor=ACTOR, context=context, invoice=invoice)
            else:
                request = request_invoice_signatures(
                    session, invoice, people, mode=SigningMode(mode),
                    consent_text=consent_text, actor=ACTOR, context=context)
            link = signing_link(request.signers[0], context)
            summary = (f"Signature request {request.id} for {request.title}: "
                       f"{len(request.signers)} signer(s), {request.signers[0].email} asked "
                       f"first; expires {request.expires_at:%Y-%m-%d %H:%M} UTC.")
    except SigningError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(summary)
    if show_links:
        click.echo(link)


def _invoice(session, number: str, organisation_id: int | None) -> Invoice:
    query = sa.select(Invoice).where(Invoice.number == number)
    if organisation_id:
        query = query.where(Invoice.organisation_id == organisation_id)
    found = list(session.scalars(query))
    if not found:
        raise SigningError(f"there is no invoice {number}; check the number")
    if len(found) > 1:
        raise SigningError(f"several sellers have an invoice {number}; add --organisation ID")
    return found[0]


def _customer(session, number: str | None, organisation_id: int | None) -> Customer:
    if not number:
        raise SigningError("--customer: say which customer the PDF concerns")
    query = sa.select(Customer).where(Customer.number == number)
    if organisation_id:
        query = query.where(Customer.organisation_id == organisation_id)
    found = list(session.scalars(query))
    if not found:
        raise SigningError(f"--customer: there is no customer {number}")
    if len(found) > 1:
        raise SigningError(f"--customer: several sellers have a customer {number}; "
                           "add --organisation ID")
    return found[0]


@signatures_group.command("remind")
@click.option("--now", type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%d"]),
              help="Act as if it were this UTC time (default: now).")
@with_appcontext
def remind_command(now) -> None:
    """Remind current signers who have waited too long; expire requests past their time."""
    from datetime import UTC

    context = SigningContext.from_app()
    moment = now.replace(tzinfo=UTC) if isinstance(now, datetime) else None
    with get_database().session_scope() as session:
        result = remind_and_expire(session, context=context, actor=ACTOR, now=moment)
    click.echo(f"{result.reminded} signer(s) reminded, {result.expired} request(s) expired.")


@signatures_group.command("list")
@click.option("--status", type=click.Choice([s.value for s in RequestStatus]),
              help="Only requests in this state.")
@with_appcontext
def list_command(status) -> None:
    """The signature requests, newest first, with whose turn it is."""
    with get_database().session_scope() as session:
        query = sa.select(SignatureRequest).order_by(SignatureRequest.id.desc())
        if status:
            query = query.where(SignatureRequest.status == RequestStatus(status))
        for request in session.scalars(query):
            current = request.current_signer
            turn = f"; waiting for {current.email}" if current else ""
            click.echo(f"{request.id}\t{request.status.value}\t{request.title}\t"
                       f"{len(request.signers)} signer(s){turn}")


@signatures_group.command("show")
@click.argument("request_id", type=int)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the signed PDF (with its certificate page) to this file.")
@with_appcontext
def show_command(request_id: int, out: Path | None) -> None:
    """One request: its signers, their answers and the signed PDF's SHA-256."""
    context = SigningContext.from_app()
    with get_database().session_scope() as session:
        request = session.get(SignatureRequest, request_id)
        if request is None:
            raise click.ClickException(f"there is no signature request {request_id}")
        click.echo(f"{request.title} ({request.mode.value}): {request.status.value}; "
                   f"expires {request.expires_at:%Y-%m-%d %H:%M} UTC")
        click.echo(f"document {request.document_sha256}")
        for signer in request.signers:
            when = f" {signer.finished_at:%Y-%m-%d %H:%M}" if signer.finished_at else ""
            reason = f": {signer.decline_reason}" if signer.decline_reason else ""
            click.echo(f"  {signer.position}. {signer.email} {signer.status.value}{when}{reason}")
        if request.signed_sha256:
            click.echo(f"signed {request.signed_sha256}")
            if out is not None:
                out.write_bytes(context.store.get(session, request.signed_sha256))
                click.echo(f"Wrote {out}")
        elif out is not None:
            raise click.ClickException("the request is not signed by everyone yet; "
                                       "there is no signed PDF to write")
