"""``herald demo``: the embedded Herald with demo data, web server and worker in one process."""

from __future__ import annotations

import time

import click
from flask import current_app
from flask.cli import with_appcontext

from distribution.documents import make_store
from portal.cli import run_consumer, serve_in_background
from portal.db import get_database
from portal.demo.seed import is_seeded, read_sign_ins, seed_demo
from portal.migrate import upgrade


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--seed-only", is_flag=True, help="Create or upgrade the database and seed it, "
                                                "then exit.")
@with_appcontext
def demo_command(host: str, port: int, seed_only: bool) -> None:
    """Create or upgrade the embedded database, seed demo data once, then serve and work."""
    app = current_app._get_current_object()
    settings = app.config["HERALD"]
    database = get_database()
    upgrade(database.engine)
    with database.session_scope() as session:
        if not is_seeded(session):
            started = time.monotonic()
            click.echo("Seeding demo data (a seller, 200 customers, about 1,000 documents)...")
            seed_demo(session, settings.instance_path,
                      make_store(settings.document_store, settings.instance_path))
            click.echo(f"Seeded in {time.monotonic() - started:.1f} s.")
    if seed_only:
        return
    serve_in_background(app, host, port)
    click.echo(f"\nHerald demo: http://{host}:{port}/\n")
    click.echo("Sign in as:")
    for sign_in in read_sign_ins(settings.instance_path):
        click.echo(f"  {sign_in.role:<20} {sign_in.email:<40} password: {sign_in.password}")
    click.echo("\nPress Ctrl+C to stop.")
    run_consumer(app, workers=2)
