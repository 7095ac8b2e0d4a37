"""``herald api-keys create|list|revoke|purge``: administrators manage integration keys."""

from __future__ import annotations

import getpass

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from portal.api.auth import purge_rate_windows
from portal.api.idempotency import purge
from portal.api.keys import KeyError_, create_key, revoke_key
from portal.api.spec import SCOPES
from portal.db import get_database
from portal.models import ApiKey


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@click.group("api-keys")
def api_keys_group() -> None:
    """Keys for the integration API (/api/v1)."""


@api_keys_group.command("create")
@click.option("--name", required=True, help="Who uses it, e.g. 'call centre'. Shown in logs.")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(list(SCOPES)),
              help="Repeat for several scopes.")
@click.option("--rate-limit", type=click.IntRange(1), default=None,
              help="Requests per rate window for this key (default: HERALD_API_RATE_LIMIT).")
@with_appcontext
def create_command(name: str, scopes: tuple[str, ...], rate_limit: int | None) -> None:
    """Create a key and print it once (only its SHA-256 is kept)."""
    try:
        with get_database().session_scope() as session:
            key, secret = create_key(session, name, list(scopes), actor=_actor(),
                                     rate_limit=rate_limit)
            click.echo(f"Created API key {key.name!r} (prefix {key.prefix}, scopes "
                       f"{key.scopes}).")
    except KeyError_ as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("Copy it now; it is not shown again:")
    click.echo(secret)


@api_keys_group.command("list")
@with_appcontext
def list_command() -> None:
    """Every key: name, prefix, scopes, last used, revoked."""
    with get_database().session_scope() as session:
        keys = session.scalars(sa.select(ApiKey).order_by(ApiKey.id)).all()
        if not keys:
            click.echo("No API keys yet; create one with 'herald api-keys create'.")
        for key in keys:
            used = key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else "never"
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            limit = key.rate_limit or "default"
            click.echo(f"{key.prefix}  {key.name}  [{key.scopes}]  limit {limit}  "
                       f"last used {used}  {state}")


@api_keys_group.command("revoke")
@click.argument("name_or_prefix")
@with_appcontext
def revoke_command(name_or_prefix: str) -> None:
    """Revoke the key with this name or prefix; it stops working at once."""
    with get_database().session_scope() as session:
        key = session.scalars(sa.select(ApiKey).where(sa.or_(
            ApiKey.name == name_or_prefix, ApiKey.prefix == name_or_prefix))).first()
        if key is None:
            raise click.ClickException(f"no key named or prefixed {name_or_prefix!r}; see "
                                       "'herald api-keys list'")
        revoke_key(session, key, actor=_actor())
        click.echo(f"Revoked API key {key.name!r} ({key.prefix}).")


@api_keys_group.command("purge")
@with_appcontext
def purge_command() -> None:
    """Delete Idempotency-Key records older than 24 hours and old rate-limit counts."""
    with get_database().session_scope() as session:
        records = purge(session)
        windows = purge_rate_windows(session)
    click.echo(f"Deleted {records} idempotency records and {windows} rate-limit windows.")
