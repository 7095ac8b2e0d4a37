"""Appending many events at once keeps the same chain, verifiable event by event."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import sqlalchemy as sa

from distribution.events import (
    Event,
    EventChainHead,
    NewEvent,
    event_hash,
    events_for,
    record_event,
    record_events,
    verify_chain,
)


def _events(count: int, subject: str = "1") -> list[NewEvent]:
    return [NewEvent("delivery", subject, "delivery.planned",
                     {"message_id": i, "channel": "email", "wave_id": None,
                      "reason": "naïve “quotes” \\ and \n", "tuple": (1, 2),
                      "when": datetime(2026, 11, 23, tzinfo=UTC)}, actor="ops@test")
            for i in range(count)]


def test_bulk_events_chain_on_from_single_ones_and_verify(session):
    record_event(session, "run", "1", "run.started", {"a": 1}, actor="test")

    assert record_events(session, _events(3)) == 3
    record_event(session, "run", "1", "run.created", {"b": 2}, actor="test")
    assert record_events(session, []) == 0

    events = session.scalars(sa.select(Event).order_by(Event.id)).all()
    assert [e.kind for e in events] == ["run.started"] + ["delivery.planned"] * 3 + [
        "run.created"]
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    assert session.get(EventChainHead, 1).count == 5
    assert verify_chain(session) is None


def test_bulk_hashes_are_what_event_hash_computes(session):
    record_events(session, [*_events(2),
                            NewEvent("run", "7", "run.odd", {2: "two", 10: "ten"}, actor="ops"),
                            NewEvent("run", "7", "run.empty", {}, actor="ops")])

    for event in session.scalars(sa.select(Event).order_by(Event.id)):
        assert event.hash == event_hash(event.prev_hash, event.subject_type, event.subject_key,
                                        event.kind, event.payload, event.actor, event.at)
    (stored, _) = events_for(session, "delivery", "1")[:2]
    assert stored.payload["tuple"] == [1, 2]
    assert stored.payload["when"] == "2026-11-23 00:00:00+00:00"
    assert events_for(session, "run", "7")[0].payload == {"2": "two", "10": "ten"}
    assert verify_chain(session) is None


def test_the_first_events_ever_start_the_chain(session):
    assert session.get(EventChainHead, 1) is None
    record_events(session, _events(2))
    first = session.scalars(sa.select(Event).order_by(Event.id)).first()
    assert first.prev_hash == "0" * 64
    assert verify_chain(session) is None


def test_an_edited_bulk_event_is_found(session):
    record_events(session, _events(4))
    third = session.scalars(sa.select(Event).order_by(Event.id).offset(2)).first()
    session.execute(sa.update(Event).where(Event.id == third.id)
                    .values(payload={"message_id": 99}))
    broken = verify_chain(session)
    assert broken is not None and broken.event_id == third.id and "edited" in broken.reason
