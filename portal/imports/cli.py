"""``herald invoices import FILE...``: each file is imported whole or not at all."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from distribution.documents import DocumentStoreUnavailable, make_store
from portal.db import get_database
from portal.imports.formats import read_documents
from portal.imports.problems import ImportRejected
from portal.imports.service import ImportResult, import_documents
from portal.tasks import enqueue_pdf_rendering, unrendered_invoice_ids


@click.group("invoices")
def invoices_group() -> None:
    """Invoices and credit notes."""


@invoices_group.command("import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the files and report, but write nothing.")
@with_appcontext
def import_command(files: tuple[Path, ...], dry_run: bool) -> None:
    """Import invoices from JSON, CSV or UBL XML files.

    Every file is checked completely before anything of it is written; a file
    with any problem is refused whole and its problems are listed. Importing a
    file again creates nothing new.
    """
    settings = current_app.config["HERALD"]
    database = get_database()
    created = unchanged = rejected = 0
    for path in files:
        try:
            documents = read_documents(path)
            with database.sessionmaker() as session, session.begin():
                result = _import(session, documents, str(path), settings, dry_run)
                to_render = [] if dry_run else unrendered_invoice_ids(session, result.created)
                if dry_run:
                    session.rollback()
        except ImportRejected as exc:
            count = _document_count(exc)
            rejected += count
            click.secho(f"{path}: refused, nothing imported ({len(exc.problems)} problem"
                        f"{'s' if len(exc.problems) != 1 else ''}):", fg="red", err=True)
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            continue
        except DocumentStoreUnavailable as exc:  # e.g. the disk is full: stop, nothing kept
            raise click.ClickException(f"{path}: refused, nothing imported: {exc}") from exc
        # PDFs are rendered by the worker, and only once the import is committed.
        enqueue_pdf_rendering(current_app, to_render)
        created += len(result.created)
        unchanged += len(result.unchanged)
        click.echo(_file_line(path, result, dry_run))
    verb = "would create" if dry_run else "created"
    summary = f"Summary: {verb} {created}, unchanged {unchanged}, rejected {rejected}."
    if rejected:
        click.secho(summary, fg="red")
        raise SystemExit(1)
    click.secho(summary, fg="green")


def _import(session, documents, file: str, settings, dry_run: bool) -> ImportResult:
    options = {"file": file, "rules_dir": settings.einvoice_rules_dir, "actor": "cli:import",
               "store": make_store(settings.document_store, settings.instance_path)}
    if len(documents) < settings.import_progress_threshold:
        return import_documents(session, documents, **options)
    with click.progressbar(length=len(documents), label=f"Importing {file}",
                           file=sys.stderr) as bar:  # the report on stdout stays clean
        return import_documents(session, documents, progress=bar.update, **options)


def _document_count(rejected: ImportRejected) -> int:
    # A refused file counts each document it named as rejected (at least one).
    return max(len({p.document for p in rejected.problems if p.document}), 1)


def _file_line(path: Path, result: ImportResult, dry_run: bool) -> str:
    parts = [f"{'would create' if dry_run else 'created'} {len(result.created)}"]
    if result.unchanged:
        shown = ", ".join(result.unchanged[:5]) + (", ..." if len(result.unchanged) > 5 else "")
        parts.append(f"unchanged {len(result.unchanged)} (already imported: {shown})")
    return f"{path}: " + ", ".join(parts)
