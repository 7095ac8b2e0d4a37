"""A run writes its events' payloads as canonical JSON text built from parts: what is stored
is what the dictionaries would have given, and the chain verifies."""

from __future__ import annotations

import json

import sqlalchemy as sa

from distribution.channels.base import ChannelName
from distribution.events import Event, canonical_json, event_hash, verify_chain
from distribution.preferences import ALL_TYPES, set_preference
from distribution.runs import WaveOptions, create_run
from tests.distribution.conftest import PUSH_SUBSCRIPTION, make_recipient, spec

AWKWARD = 'invoice:"Zoë" \\ 50% — tab\there, line\nbreak, \x01 and 😀'


def test_prebuilt_payloads_equal_the_dictionaries_encoded(session):
    plain = make_recipient(session, "plain")
    fallback = make_recipient(session, "fallback", push=PUSH_SUBSCRIPTION)
    set_preference(session, fallback, ALL_TYPES,
                   [ChannelName.FCM, ChannelName.WEB_PUSH, ChannelName.EMAIL])
    set_preference(session, fallback, "invoice", [ChannelName.PEPPOL])
    opted = make_recipient(session, "opted")
    set_preference(session, opted, "invoice", [ChannelName.EMAIL], opted_out=True)

    summary = create_run(session, name="json", message_type="invoice", specs=[
        spec(plain.recipient_key, AWKWARD), spec(fallback.recipient_key, "invoice:ü"),
        spec(opted.recipient_key, "invoice:opted")], selection={}, created_by="ops@test",
        options=WaveOptions())

    events = session.scalars(sa.select(Event).where(
        Event.kind.in_(("preference.resolved", "delivery.planned"))).order_by(Event.id)).all()
    assert summary.fallbacks >= 1
    assert len(events) == 3 + sum(summary.deliveries.values())
    resolved = [e.payload for e in events if e.kind == "preference.resolved"]
    assert resolved[0]["subject"] == AWKWARD
    assert resolved[2]["opted_out"] is True
    assert any(e.payload["fallback_reason"] for e in events if e.kind == "delivery.planned")
    for event in events:
        # The stored text is the canonical encoding of what it says, and hashes as such.
        assert set(event.payload) == ({"channels", "opted_out", "run_id", "subject",
                                       "unavailable"} if event.kind == "preference.resolved"
                                      else {"channel", "fallback_for", "fallback_reason",
                                            "message_id", "wave_id"})
        stored = session.scalar(sa.select(sa.cast(Event.payload, sa.Text)).where(
            Event.id == event.id))
        assert json.loads(stored) == event.payload
        assert event.hash == event_hash(event.prev_hash, event.subject_type, event.subject_key,
                                        event.kind, event.payload, event.actor, event.at)
        if session.get_bind().dialect.name == "sqlite":  # PostgreSQL's json keeps the text too
            assert stored == canonical_json(event.payload)
    assert verify_chain(session) is None
