"""``herald einvoice``: export, validate and render e-invoice documents."""

from __future__ import annotations

from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

import einvoice
from distribution.documents import make_store
from portal.db import get_database
from portal.models import Invoice
from portal.rendering import render_invoice_pdf

ACTOR = "cli:einvoice"


@click.group("einvoice")
def einvoice_group() -> None:
    """E-invoice documents (UBL 2.1 / Peppol BIS Billing 3.0)."""


@einvoice_group.command("export")
@click.argument("numbers", nargs=-1)
@click.option("--all", "export_all", is_flag=True, help="Export every issued document.")
@click.option("--out", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder to write to.")
@click.option("--pdf", "with_pdf", is_flag=True,
              help="Also write each document's PDF (rendered and stored first if it has none).")
@with_appcontext
def export_command(numbers: tuple[str, ...], export_all: bool, out_dir: Path,
                   with_pdf: bool) -> None:
    """Write one UBL file per issued document, exactly as it was issued.

    With ``--pdf`` the document's PDF is written beside it (``NUMBER.pdf``):
    the stored one, or, for a document the worker has not rendered yet, one
    rendered and stored now, so the export and later downloads agree.
    """
    if bool(numbers) == export_all:
        raise click.UsageError("give document numbers or --all, not both and not neither")
    settings = current_app.config["HERALD"]
    store = make_store(settings.document_store, settings.instance_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    with get_database().session_scope() as session:
        query = sa.select(Invoice).where(Invoice.ubl_sha256.is_not(None)).order_by(Invoice.id)
        if numbers:
            query = query.where(Invoice.number.in_(numbers))
        invoices = session.scalars(query).all()
        missing = sorted(set(numbers) - {invoice.number for invoice in invoices})
        if missing:
            raise click.ClickException(
                f"not issued or not found: {', '.join(missing)}; issue them first")
        for invoice in invoices:
            data = store.get(session, invoice.ubl_sha256)
            (out_dir / f"{_safe_name(invoice.number)}.xml").write_bytes(data)
            if with_pdf:
                digest = render_invoice_pdf(session, invoice, store,
                                            public_url=settings.public_url, actor=ACTOR)
                (out_dir / f"{_safe_name(invoice.number)}.pdf").write_bytes(
                    store.get(session, digest))
            written += 1
    also = " with their PDFs" if with_pdf else ""
    click.echo(f"Exported {written} document{'s' if written != 1 else ''}{also} to {out_dir}.")


@einvoice_group.command("render")
@click.argument("number")
@click.option("--out", "out_file", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="PDF file to write.")
@with_appcontext
def render_command(number: str, out_file: Path) -> None:
    """Write the PDF of issued document NUMBER, rendering and storing it first if needed.

    A document that has its PDF is never rendered again: the file written is
    the one that was sent.
    """
    settings = current_app.config["HERALD"]
    store = make_store(settings.document_store, settings.instance_path)
    with get_database().session_scope() as session:
        invoices = session.scalars(sa.select(Invoice).where(Invoice.number == number)).all()
        if not invoices:
            raise click.ClickException(f"no document numbered {number!r}")
        if len(invoices) > 1:
            # Numbers are unique per seller only; refuse rather than guess.
            raise click.ClickException(f"{len(invoices)} sellers have a document numbered "
                                       f"{number!r}; export with --all instead")
        invoice = invoices[0]
        if not invoice.ubl_sha256:
            raise click.ClickException(f"{number} is not issued; issue it first")
        rendered_now = invoice.pdf_sha256 is None
        digest = render_invoice_pdf(session, invoice, store, public_url=settings.public_url,
                                    actor=ACTOR)
        data = store.get(session, digest)
    if out_file.parent != Path():
        out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_bytes(data)
    how = "rendered and stored" if rendered_now else "stored"
    click.echo(f"Wrote the {how} PDF of {number} ({len(data):,} bytes, sha256 {digest}) "
               f"to {out_file}.")


@einvoice_group.command("validate")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--peppol", is_flag=True,
              help="Hold every file to Peppol BIS Billing 3.0, whatever it declares (a "
                   "document to send over Peppol). By default each file is held to the "
                   "specification it declares, as the official validators do.")
@with_appcontext
def validate_command(files: tuple[Path, ...], peppol: bool) -> None:
    """Validate UBL files: one line per finding, then a summary; exit 1 on any fatal finding."""
    rules_dir = current_app.config["HERALD"].einvoice_rules_dir
    fatal = warnings = not_peppol = 0
    ran: set[str] = set()
    for path in files:
        findings = einvoice.validate(path.read_bytes(), rules_dir, peppol=peppol or None)
        ran.update(findings.ran)
        not_peppol += "peppol" in findings.not_applicable
        for finding in findings:
            click.echo(f"{path}: {finding.severity} [{finding.rule_id}] {finding.location}: "
                       f"{finding.message}")
            if finding.hint:
                click.echo(f"  hint: {finding.hint}")
        fatal += len(findings.fatal)
        warnings += len(findings.warnings)
    applied = ", ".join(sorted(ran)) or "none"
    click.echo(f"Summary: {len(files)} file{'s' if len(files) != 1 else ''}, {fatal} fatal, "
               f"{warnings} warning{'s' if warnings != 1 else ''}; rules applied: {applied}.")
    if not_peppol:
        click.echo(f"{not_peppol} of {len(files)} do not declare Peppol BIS Billing 3.0 (a "
                   "buyer outside Peppol): Peppol's rules do not apply to them.")
    if "cen" not in ran:
        click.echo("The official CEN and Peppol rules were not applied: set EINVOICE_RULES_DIR.")
    if fatal:
        raise SystemExit(1)


def _safe_name(number: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in number)
