"""Fixtures shared by the whole suite.

The suite runs on SQLite by default and on PostgreSQL when
``HERALD_TEST_DATABASE_URL`` names one (``make test`` does both). On PostgreSQL
every run works in a schema of its own, dropped at the end, so runs never see
each other's rows; every test runs in a transaction that is rolled back.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from portal import create_app
from portal.db import get_database
from portal.migrate import upgrade

POSTGRES_URL = os.environ.get("HERALD_TEST_DATABASE_URL")
SHARED = Path(__file__).resolve().parents[2] / "shared"
RULES_DIR = Path(os.environ.get("EINVOICE_RULES_DIR") or SHARED / "einvoice-rules")

# Property-based tests stay bounded: few examples, a deadline per example generous enough for
# a busy machine's first, cold request (a tight one fails as "flaky"), no example database in
# the work tree. CI (CI=true) draws the same examples on every run;
# HYPOTHESIS_PROFILE=explore draws many more, at random, to hunt for new failures.
_PROPERTIES = {"max_examples": 40, "deadline": 20_000, "database": None,
               "suppress_health_check": [HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow, HealthCheck.data_too_large]}
hypothesis_settings.register_profile("dev", **_PROPERTIES)
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True, **_PROPERTIES)
hypothesis_settings.register_profile("explore", **{**_PROPERTIES, "max_examples": 2000})
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                                 or ("ci" if os.environ.get("CI") else "dev"))


def on_postgres() -> bool:
    """True when this run of the suite is the PostgreSQL one."""
    return bool(POSTGRES_URL)


def _schema_url(url: str, schema: str) -> str:
    return sa.make_url(url).update_query_dict(
        {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


class DatabaseFactory:
    """Makes empty databases: SQLite files, or PostgreSQL schemas dropped afterwards."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.schemas: list[str] = []

    def new_url(self) -> str:
        if not POSTGRES_URL:
            return f"sqlite:///{self.tmp_path_factory.mktemp('db') / 'herald.sqlite3'}"
        schema = f"herald_test_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(POSTGRES_URL)
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        except sa.exc.OperationalError as exc:
            pytest.exit(f"PostgreSQL at {POSTGRES_URL} is not reachable ({exc.orig}); start it "
                        "or run 'make test-sqlite'", returncode=3)
        finally:
            engine.dispose()
        self.schemas.append(schema)
        return _schema_url(POSTGRES_URL, schema)

    def drop_all(self) -> None:
        if not self.schemas:
            return
        engine = sa.create_engine(POSTGRES_URL)
        # One transaction per schema: dropping dozens of schemas at once needs a lock per
        # table and runs out of max_locks_per_transaction.
        for schema in self.schemas:
            with engine.begin() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory) -> Iterator[DatabaseFactory]:
    """Factory of empty databases for this run."""
    factory = DatabaseFactory(tmp_path_factory)
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def app(databases, tmp_path_factory):
    """The portal app on a migrated database of its own."""
    instance = tmp_path_factory.mktemp("instance")
    app = create_app({
        "DATABASE_URL": databases.new_url(),
        "HERALD_INSTANCE_PATH": str(instance),
        "EINVOICE_RULES_DIR": str(RULES_DIR) if RULES_DIR.is_dir() else "",
        "TESTING": True,
    })
    upgrade(get_database(app).engine)
    yield app
    get_database(app).engine.dispose()


@pytest.fixture
def session(app):
    """A session in a transaction rolled back after the test; the app's requests join it."""
    database = get_database(app)
    connection = database.engine.connect()
    outer = connection.begin()
    saved = dict(database.sessionmaker.kw)
    database.sessionmaker.configure(bind=connection, join_transaction_mode="create_savepoint")
    session = database.sessionmaker()
    try:
        yield session
    finally:
        session.close()
        database.sessionmaker.kw.clear()
        database.sessionmaker.kw.update(saved)
        outer.rollback()
        connection.close()


@pytest.fixture
def client(app, session):
    """A test client whose requests share the test's transaction."""
    return app.test_client()


@pytest.fixture
def runner(app, session):
    """A CLI runner for ``herald`` commands, sharing the test's transaction."""
    return app.test_cli_runner()
