"""Bulk writes for large runs: ids taken up front, rows written in one stream.

On PostgreSQL the rows go in with ``COPY ... FROM STDIN`` on the session's own
connection (so in its transaction), and ids come from the table's sequence; a
multi-row ``INSERT`` would spend most of its time building and parsing SQL. On
SQLite, whose writers are serialised, ids continue from the largest one and the
rows go in with one ``executemany``.

The values must already be what the column stores: JSON as text, enums as
their values, timestamps timezone-aware. No ORM objects are made.
"""

from __future__ import annotations

import gc
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a piece of bulk work.

    Planning a run keeps hundreds of thousands of rows and objects alive at once;
    while they pile up, the collector runs again and again and each full pass walks
    all of them: a quarter of the CPU of planning 100,000 documents, measured, and
    more the larger the run. Reference counting still frees almost everything; the
    few cycles left are collected once the collector is back on. Works as a decorator
    too; nested use is fine (only the outermost one turns it back on). The collector
    is process-wide: other threads' cycles wait too, for as long as the work lasts.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def among(session: Session, column: sa.ColumnElement,
          values: Collection[Any]) -> sa.ColumnElement[bool]:
    """``column IN values`` for thousands of values.

    PostgreSQL gets ``column IN (SELECT unnest(:array))``: one parameter instead of
    thousands to render and parse (``= ANY(:array)`` on a table the planner
    believes tiny becomes a scan comparing every row with every value). SQLite
    (up to 32,766 parameters) gets ``IN``, which it looks up in the index.

    The planner may still loop over the table and compare each row with every
    value when it underestimates the table (rows this transaction added, or a
    plan prepared while the table was small): use :func:`present` for a table
    that grows while it is being looked up.
    """
    if session.get_bind().dialect.name == "postgresql":
        array = sa.bindparam(None, list(values), type_=ARRAY(column.type))
        return column.in_(sa.select(sa.func.unnest(array)).scalar_subquery())
    return column.in_(list(values))


def present(session: Session, column: sa.ColumnElement, values: Collection[Any],
            *criteria: sa.ColumnElement[bool]) -> set[Any]:
    """Which of ``values`` occur in ``column`` among the rows matching ``criteria``.

    On PostgreSQL each value is looked up by itself, so the work is one index probe
    per value however large the table is and whatever its statistics say. Within a
    run's transaction the messages table grows by thousands of rows the statistics
    have not seen, and a plan for ``IN (SELECT unnest(...))`` could then read every
    message once per looked-up value: 13 to 20 s per chunk. The statement is never
    prepared, so it is planned afresh for the table as it is each time: a plan
    prepared while the table was small (psycopg prepares a statement on its fifth
    run, and the server then keeps one generic plan) would scan it whole per value.
    Needs an index on ``column`` together with the columns ``criteria`` fix by
    equality. SQLite gets ``IN``, which it looks up in the index.
    """
    if not values:
        return set()
    if session.get_bind().dialect.name != "postgresql":
        return set(session.scalars(sa.select(column).where(column.in_(list(values)),
                                                           *criteria)))
    wanted = sa.func.unnest(sa.bindparam(None, list(values), type_=ARRAY(column.type))
                            ).table_valued("value").render_derived(name="wanted")
    # LATERAL makes the look-up depend on each value, so it cannot become a join that
    # reads the whole table; LIMIT keeps the planner from flattening it into one.
    match = (sa.select(column.label("value")).where(column == wanted.c.value, *criteria)
             .limit(1).lateral("match"))
    connection = session.connection()
    driver = connection.connection.driver_connection
    threshold = driver.prepare_threshold
    driver.prepare_threshold = None  # planned afresh each time (see above)
    try:
        return set(connection.execute(sa.select(match.c.value).select_from(wanted)
                                      .join(match, sa.true())).scalars())
    finally:
        driver.prepare_threshold = threshold


def id_value_pairs(ids: Sequence[int], values: Sequence[Any],
                   value_type: sa.types.TypeEngine) -> sa.TableValuedAlias:
    """PostgreSQL only: ``unnest(:ids, :values) AS pairs(id, value)`` with two parameters.

    Lets one ``UPDATE ... FROM pairs WHERE table.id = pairs.id`` give each row its own
    value, instead of one statement run per row.
    """
    return sa.func.unnest(sa.bindparam(None, list(ids), type_=ARRAY(sa.BigInteger)),
                          sa.bindparam(None, list(values), type_=ARRAY(value_type))
                          ).table_valued("id", "value").render_derived(name="pairs")


def allocate_ids(session: Session, table: sa.Table, count: int) -> list[int]:
    """``count`` new primary keys for ``table``, in increasing order."""
    if count <= 0:
        return []
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        # The sequence is looked up once: pg_get_serial_sequence inside the select would
        # search the catalogue for every id, ten times the cost of nextval itself.
        sequence = session.scalar(sa.text(
            "SELECT pg_get_serial_sequence(:table, 'id')::regclass::oid"), {"table": table.name})
        # One row holding them all: fetching thousands of rows costs more than the ids.
        return sorted(session.scalar(
            sa.text("SELECT array_agg(nextval(CAST(:sequence AS oid)::regclass)) "
                    "FROM generate_series(1, :count)"),
            {"sequence": sequence, "count": count}))
    # SQLite hands out max(id) + 1 itself; the transaction holds the write lock, so no
    # other writer can take these ids meanwhile.
    last = session.scalar(sa.select(sa.func.max(table.c.id))) or 0
    return list(range(last + 1, last + 1 + count))


def insert_rows(session: Session, table: sa.Table, columns: Sequence[str],
                rows: Iterable[Sequence[Any]]) -> int:
    """Insert ``rows`` (tuples in the order of ``columns``) in the session's transaction.

    Returns how many. ``rows`` may be a generator: on PostgreSQL it is consumed
    while the server already stores what was sent, so the work of making the rows
    overlaps with the work of storing them.
    """
    session.flush()
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        count = 0
        names = ", ".join(f'"{name}"' for name in columns)
        with connection.connection.driver_connection.cursor() as cursor, \
                cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            write = copy.write_row
            for row in rows:
                write(row)
                count += 1
        return count
    # The column types' own conversions (timestamps, enums), except JSON: it is text already.
    processors = [None if isinstance(table.c[name].type, sa.JSON)
                  else table.c[name].type.bind_processor(connection.dialect)
                  for name in columns]
    if any(processors):
        rows = (tuple(value if process is None else process(value)
                      for process, value in zip(processors, row, strict=True)) for row in rows)
    values = [dict(zip(columns, row, strict=True)) for row in rows]
    if values:
        # Untyped columns: the values are converted already.
        plain = sa.table(table.name, *(sa.column(name) for name in columns))
        connection.execute(sa.insert(plain), values)
    return len(values)
