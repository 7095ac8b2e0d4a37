"""Alembic environment: one migration history for the portal's and distribution's tables.

Herald runs it through ``portal.migrate``, which hands over an open connection
(``config.attributes["connection"]``); plain ``alembic`` with ``-x url=...`` works too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

import distribution.schema
import portal.models

config = context.config
target_metadata = [portal.models.Base.metadata, distribution.schema.metadata]


def run_migrations(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        user_module_prefix="distribution.sqltypes.",
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        run_migrations(connection)


if context.is_offline_mode():
    raise SystemExit("Herald's migrations run online only: herald db upgrade")
run()
