"""The event log is append-only and hash-chained: any edit or removal is found."""

from __future__ import annotations

import sqlalchemy as sa

from distribution.events import Event, events_for, record_event, verify_chain


def _three_events(session):
    record_event(session, "invoice", "1:INV-1", "invoice.imported", {"amount": "10.00"},
                 actor="test")
    record_event(session, "invoice", "1:INV-1", "payment.recorded", {"amount": "10.00"},
                 actor="test")
    record_event(session, "invoice", "1:INV-2", "invoice.imported", {"amount": "5.00"},
                 actor="test")


def test_an_untouched_chain_verifies(session):
    _three_events(session)
    assert verify_chain(session) is None
    assert [e.kind for e in events_for(session, "invoice", "1:INV-1")] == [
        "invoice.imported", "payment.recorded"]


def test_each_event_links_to_the_one_before(session):
    _three_events(session)
    events = session.scalars(sa.select(Event).order_by(Event.id)).all()
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash


def test_an_edited_payload_is_found(session):
    _three_events(session)
    second = session.scalars(sa.select(Event).order_by(Event.id).offset(1)).first()
    session.execute(sa.update(Event).where(Event.id == second.id)
                    .values(payload={"amount": "1.00"}))
    broken = verify_chain(session)
    assert broken is not None and broken.event_id == second.id
    assert "edited" in broken.reason


def test_a_removed_event_is_found(session):
    _three_events(session)
    second = session.scalars(sa.select(Event).order_by(Event.id).offset(1)).first()
    session.execute(sa.delete(Event).where(Event.id == second.id))
    broken = verify_chain(session)
    assert broken is not None and "removed" in broken.reason


def test_removing_the_newest_event_is_found(session):
    _three_events(session)
    last = session.scalars(sa.select(Event).order_by(Event.id.desc())).first()
    session.execute(sa.delete(Event).where(Event.id == last.id))
    broken = verify_chain(session)
    assert broken is not None and "missing" in broken.reason
