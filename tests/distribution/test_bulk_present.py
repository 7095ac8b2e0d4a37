"""bulk.present: which keys a table holds, looked up key by key on PostgreSQL, and a run's
existing-message check built on it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from distribution import runs
from distribution.bulk import present
from distribution.deliveries import Message
from distribution.events import verify_chain
from tests.conftest import on_postgres
from tests.distribution.conftest import make_recipient, run_for, spec


def test_present_finds_exactly_the_stored_keys_matching_the_criteria(session):
    make_recipient(session, "a")
    make_recipient(session, "b")
    run_for(session, ["a", "b"])
    run_for(session, ["a"], message_type="notice")

    invoices = present(session, Message.subject_key, {"invoice:a", "invoice:b", "invoice:zz"},
                       Message.message_type == "invoice")
    notices = present(session, Message.subject_key, ["invoice:a", "invoice:b"],
                      Message.message_type == "notice")

    assert invoices == {"invoice:a", "invoice:b"}
    assert notices == {"invoice:a"}
    assert present(session, Message.subject_key, [], Message.message_type == "invoice") == set()


def test_a_run_in_many_chunks_skips_what_earlier_runs_and_chunks_made(session, monkeypatch):
    monkeypatch.setattr(runs, "CHUNK_SIZE", 3)
    keys = [f"r{n}" for n in range(10)]
    for key in keys:
        make_recipient(session, key, email=f"{key}@example.com")
    run_for(session, keys[:4])

    summary = runs.create_run(session, name="again", message_type="invoice",
                              specs=[spec(key) for key in keys + keys[8:]],
                              selection={}, created_by="ops@test",
                              options=runs.WaveOptions())

    assert (summary.messages_created, summary.messages_existing) == (6, 6)
    assert session.scalar(sa.select(sa.func.count()).select_from(Message)) == 10
    assert verify_chain(session) is None


@pytest.mark.skipif(not on_postgres(), reason="server-side prepared statements: PostgreSQL")
def test_the_look_up_is_never_prepared_so_it_is_planned_for_the_table_as_it_is(session):
    # psycopg prepares a statement on its fifth run, and PostgreSQL then keeps one generic
    # plan: made while the table was small, it would read the whole table per key later.
    make_recipient(session, "a")
    run_for(session, ["a"])
    driver = session.connection().connection.driver_connection
    threshold = driver.prepare_threshold

    for _ in range(12):
        assert present(session, Message.subject_key, ["invoice:a", "invoice:b"],
                       Message.message_type == "invoice") == {"invoice:a"}

    prepared = session.scalars(sa.text(
        "SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%LATERAL%'")).all()
    assert prepared == []
    assert driver.prepare_threshold == threshold
