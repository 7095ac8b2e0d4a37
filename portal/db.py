"""Database engine and sessions for the web app, its CLI commands and its tasks.

One transaction per unit of work: a request commits once after the view has
run (``after_request``), a CLI command or task uses :func:`session_scope`.
Services take a session and never commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from flask import Flask, current_app, g
from sqlalchemy.orm import Session, sessionmaker

EXTENSION_KEY = "herald.db"


def make_engine(url: str, **kwargs) -> sa.Engine:
    """Create an engine; SQLite gets WAL, foreign keys, a busy timeout and BEGIN IMMEDIATE."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # pysqlite's own transaction handling defers BEGIN until the first write,
        # which lets two writers deadlock on upgrade; take control of BEGIN instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def on_begin(connection):
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
        # writes fails at once with "database is locked" when another writer got in between,
        # whereas IMMEDIATE waits (busy timeout). Readers are not blocked in WAL mode.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The engine and session factory bound to one app."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session_scope(self) -> Iterator[Session]:
        """A session that commits when the block ends normally and rolls back otherwise."""
        with self.sessionmaker() as session, session.begin():
            yield session


def init_app(app: Flask, url: str) -> Database:
    """Bind a :class:`Database` to ``app`` with per-request session handling."""
    database = Database(url)
    app.extensions[EXTENSION_KEY] = database

    @app.after_request
    def commit_request_session(response):
        session = g.pop("_db_session", None)
        if session is None:
            return response
        try:
            if response.status_code < 400:
                session.commit()
            else:
                session.rollback()
        finally:
            session.close()
        return response

    @app.teardown_appcontext
    def close_request_session(_exc):
        session = g.pop("_db_session", None)
        if session is not None:
            session.rollback()
            session.close()

    return database


def get_database(app: Flask | None = None) -> Database:
    """The :class:`Database` of ``app`` (default: the current app)."""
    return (app or current_app).extensions[EXTENSION_KEY]


def db_session() -> Session:
    """The session of the current request or app context, opened on first use."""
    if "_db_session" not in g:
        g._db_session = get_database().sessionmaker()
    return g._db_session
