"""Events sharing one payload object (a batch step) chain and store as separate ones do."""

from __future__ import annotations

import sqlalchemy as sa

from distribution.events import (
    Event,
    EventChainHead,
    NewEvent,
    event_hash,
    record_event,
    record_events,
    verify_chain,
)


def test_a_shared_payload_is_stored_and_hashed_for_every_event(session):
    shared = {"wave_id": 7, "from": ["released"]}
    odd = {1: "integer key", "b": 2}  # stored with a string key, hashed as stored
    events = [NewEvent("delivery", str(n), "delivery.released", shared, "dispatcher")
              for n in range(5)]
    events.insert(2, NewEvent("delivery", "x", "delivery.sent", odd, "worker"))
    events.append(NewEvent("delivery", "9", "delivery.released", dict(shared), "dispatcher"))
    record_event(session, "run", "1", "run.started", {"a": 1}, actor="test")

    assert record_events(session, events) == 7
    record_event(session, "run", "1", "run.done", {}, actor="test")  # reads the moved head

    rows = session.scalars(sa.select(Event).order_by(Event.id)).all()
    payloads = [row.payload for row in rows[1:-1]]
    assert payloads == [shared, shared, {"1": "integer key", "b": 2}, shared, shared, shared,
                        shared]
    for row in rows:
        assert row.hash == event_hash(row.prev_hash, row.subject_type, row.subject_key,
                                      row.kind, row.payload, row.actor, row.at)
    assert verify_chain(session) is None
    head = session.get(EventChainHead, 1)
    assert head.count == 9 and head.last_hash == rows[-1].hash
