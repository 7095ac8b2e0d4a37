"""The ``herald`` command: a Flask CLI group over :func:`portal.create_app`.

Subjects register their own commands (``portal.imports.cli``, ``portal.demo``);
this module holds the process-level ones: serving, the worker and the database.
"""

from __future__ import annotations

import logging
import threading

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from distribution.sealing import reseal_columns
from portal import create_app
from portal.db import get_database
from portal.migrate import check as check_schema
from portal.migrate import current_revision, head_revision, upgrade
from portal.proxy import waitress_options
from portal.queue import get_huey, get_tasks
from portal.tasks import use_render_pool


def main() -> None:
    """Entry point of the ``herald`` console script."""
    cli = FlaskGroup(
        create_app=lambda: create_app(),
        add_default_commands=True,
        add_version_option=False,
        help="Herald: invoice distribution. Settings come from environment variables.",
    )
    cli.main(prog_name="herald")


def register_commands(app: Flask) -> None:
    """Attach every ``herald`` command to ``app.cli``."""
    from portal.demo.cli import demo_command
    from portal.einvoice_cli import einvoice_group
    from portal.imports.cli import invoices_group
    from portal.reminders_cli import reminders_group
    from portal.runs_cli import (
        audit_group,
        contacts_group,
        dispatcher_command,
        runs_group,
        waves_group,
    )

    app.cli.add_command(serve_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(db_group)
    app.cli.add_command(invoices_group)
    app.cli.add_command(demo_command)
    app.cli.add_command(einvoice_group)
    from portal.lifecycle.cli import lifecycle_group

    app.cli.add_command(lifecycle_group)  # retention, legal holds, GDPR export and erasure
    for command in (runs_group, waves_group, dispatcher_command, contacts_group, audit_group,
                    reminders_group):
        app.cli.add_command(command)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@with_appcontext
def serve_command(host: str, port: int, threads: int) -> None:
    """Serve the portal with waitress (for several processes, run gunicorn).

    Behind a reverse proxy (``TRUSTED_PROXIES``, ``PROXY_FIX_X_*``) waitress hands the
    forwarding headers to the app, which takes the client from them (portal.proxy).
    """
    ensure_schema_current()
    click.echo(f"Herald is serving on http://{host}:{port}/")
    from waitress import serve

    app = current_app._get_current_object()
    serve(app, host=host, port=port, threads=threads,
          **waitress_options(app.config["HERALD"].proxy))


@click.command("worker")
@click.option("--workers", "-w", default=2, show_default=True, type=int,
              help="Tasks run at the same time by this process.")
@click.option("--worker-type", type=click.Choice(["thread", "process"]), default="thread",
              show_default=True)
@with_appcontext
def worker_command(workers: int, worker_type: str) -> None:
    """Run a background worker that consumes Herald's task queue until stopped."""
    ensure_schema_current()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_consumer(current_app._get_current_object(), workers=workers, worker_type=worker_type)


def run_consumer(app: Flask, *, workers: int = 2, worker_type: str = "thread") -> None:
    """Consume the queue in this thread (Huey handles SIGINT/SIGTERM and stops gracefully)."""
    huey = get_huey(app)
    consumer = huey.create_consumer(workers=workers, worker_type=worker_type, periodic=True)
    get_tasks(app).heartbeat()  # shows the worker on /healthz at once, not after a minute
    pool = use_render_pool(app, processes=workers)  # PDFs in recycled child processes
    try:
        consumer.run()
    finally:
        pool.close()


def serve_in_background(app: Flask, host: str, port: int) -> threading.Thread:
    """Start waitress in a daemon thread (the main thread runs the worker)."""
    from waitress import create_server

    server = create_server(app, host=host, port=port, threads=8,
                           **waitress_options(app.config["HERALD"].proxy))
    thread = threading.Thread(target=server.run, name="herald-web", daemon=True)
    thread.start()
    return thread


def ensure_schema_current() -> None:
    """Stop with a clear message when the database needs ``herald db upgrade``."""
    current = current_revision(get_database().engine)
    head = head_revision()
    if current != head:
        raise click.ClickException(
            f"the database is at migration {current or '(empty)'} but Herald needs {head}; "
            "run 'herald db upgrade' first"
        )


@click.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Create or upgrade the database schema (safe to run again)."""
    engine = get_database().engine
    before = current_revision(engine)
    upgrade(engine, revision)
    after = current_revision(engine)
    if before == after:
        click.echo(f"Database already at {after}.")
    else:
        click.echo(f"Database upgraded from {before or '(empty)'} to {after}.")
    if after == head_revision():
        _echo_resealed(reseal_secrets())  # values stored before sealing existed


@db_group.command("reseal")
@with_appcontext
def db_reseal() -> None:
    """Seal every stored secret under the current SECRET_KEY (after rotating it).

    Values sealed under a key in SECRET_KEY_FALLBACKS are sealed again under
    SECRET_KEY; once this has run, the old key can leave SECRET_KEY_FALLBACKS.
    """
    ensure_schema_current()
    _echo_resealed(reseal_secrets())


def reseal_secrets() -> dict[str, int]:
    """Seal, under the primary key, every secret column value that is not; counts by column."""
    from distribution.webhook_models import WebhookEndpoint
    from portal.models.api import IdempotencyRecord
    from portal.models.users import User

    with get_database().session_scope() as session:
        return reseal_columns(session, [User.totp_secret, WebhookEndpoint.secret,
                                        IdempotencyRecord.response_body])


def _echo_resealed(counts: dict[str, int]) -> None:
    for column, count in counts.items():
        if count:
            click.echo(f"Sealed {count} stored value(s) of {column} under the current key.")
    if not any(counts.values()):
        click.echo("Every stored secret is sealed under the current key.")


@db_group.command("check")
@with_appcontext
def db_check() -> None:
    """Fail when the models and the database schema differ (a migration is missing)."""
    check_schema(get_database().engine)
    click.echo("The database schema matches the models.")
