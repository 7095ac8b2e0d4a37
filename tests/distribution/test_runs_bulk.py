"""Creating a run in chunks gives what resolving message by message gives, chunk borders
included, with a log that verifies."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from distribution import runs
from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, Message
from distribution.events import Event, events_for, verify_chain
from distribution.preferences import ALL_TYPES, resolve, set_preference
from distribution.recipients import add_address, mark_dead
from distribution.runs import RunError, WaveOptions, create_run
from tests.distribution.conftest import (
    PUSH_SUBSCRIPTION,
    deliveries_of,
    make_recipient,
    run_for,
    spec,
)

EMAIL, PUSH, FCM = ChannelName.EMAIL, ChannelName.WEB_PUSH, ChannelName.FCM
PORTAL, PEPPOL = ChannelName.PORTAL, ChannelName.PEPPOL


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of two specs, so a handful of specs crosses several chunk borders."""
    monkeypatch.setattr(runs, "CHUNK_SIZE", 2)


def _varied_recipients(session) -> list:
    """Recipients covering each resolution path: defaults, choices, fallbacks, opt-outs."""
    plain = make_recipient(session, "plain")
    peppol = make_recipient(session, "peppol", email=None, peppol="0208:0123456749")
    set_preference(session, peppol, "invoice", [PEPPOL])
    fallback = make_recipient(session, "fallback", push=PUSH_SUBSCRIPTION)
    set_preference(session, fallback, ALL_TYPES, [FCM, PUSH, EMAIL])
    set_preference(session, fallback, "invoice", [PEPPOL])
    opted = make_recipient(session, "opted")
    set_preference(session, opted, ALL_TYPES, [EMAIL], opted_out=True)
    portal_only = make_recipient(session, "portal_only", email=None)
    set_preference(session, portal_only, "invoice", [FCM, PEPPOL])
    addresses = make_recipient(session, "addresses", email="old@example.com")
    old = addresses.working_addresses(EMAIL)[0]
    newer = add_address(session, addresses, EMAIL, "new@example.com", actor="test")
    newest = add_address(session, addresses, EMAIL, "newest@example.com", actor="test")
    session.flush()
    old.verified_at = newer.created_at
    mark_dead(session, newest, "550 no such user", actor="test")
    unavailable = make_recipient(session, "unavailable")
    set_preference(session, unavailable, "invoice", [FCM, EMAIL])
    session.flush()
    return [plain, peppol, fallback, opted, portal_only, addresses, unavailable]


@pytest.mark.parametrize("message_type", ["invoice", "notice"])
def test_bulk_resolution_matches_resolve_for_every_recipient(session, small_chunks,
                                                             message_type):
    recipients = _varied_recipients(session)

    summary = run_for(session, [r.recipient_key for r in recipients],
                      message_type=message_type)

    fallbacks = 0
    for recipient in recipients:
        expected = resolve(session, recipient, message_type)
        fallbacks += sum(1 for c in expected.choices if c.fallback_for)
        (message,) = session.scalars(sa.select(Message).where(
            Message.subject_key == f"invoice:{recipient.recipient_key}")).all()
        got = [(d.channel, d.address_id, d.fallback_for, d.fallback_reason)
               for d in message.deliveries]
        assert got == [(c.channel, c.address.id if c.address else None,
                        c.fallback_for.value if c.fallback_for else None, c.reason or None)
                       for c in expected.choices], recipient.recipient_key
        (resolved,) = events_for(session, "message", str(message.id))
        assert resolved.kind == "preference.resolved"
        assert resolved.payload == {
            "run_id": summary.run.id, "subject": message.subject_key,
            "channels": [c.channel.value for c in expected.choices],
            "unavailable": [[c.value, reason] for c, reason in expected.unavailable],
            "opted_out": expected.opted_out}
    assert summary.opted_out == (1 if message_type == "invoice" else 0)
    assert summary.fallbacks == fallbacks == (2 if message_type == "invoice" else 0)
    assert verify_chain(session) is None


def test_waves_and_events_across_chunk_borders(session, small_chunks):
    keys = [f"k{i}" for i in range(5)]
    for key in keys:
        make_recipient(session, key, email=f"{key}@example.com")  # email and portal each

    summary = run_for(session, keys, wave_size=3, rate_per_minute=30)

    deliveries = deliveries_of(session)
    assert len(deliveries) == 10 == sum(summary.deliveries.values())
    waves = summary.run.waves
    assert [w.sequence for w in waves] == [1, 2, 3, 4]
    assert [d.wave_id for d in deliveries] == [waves[i // 3].id for i in range(10)]
    messages = session.scalars(sa.select(Message).order_by(Message.id)).all()
    assert [m.subject_key for m in messages] == [f"invoice:{key}" for key in keys]
    for delivery in deliveries:
        (planned,) = events_for(session, "delivery", str(delivery.id))
        assert planned.payload == {"message_id": delivery.message_id,
                                   "channel": delivery.channel.value,
                                   "wave_id": delivery.wave_id, "fallback_for": None,
                                   "fallback_reason": None}
        assert planned.actor == "ops@test"
    kinds = session.scalars(sa.select(Event.kind).order_by(Event.id)).all()
    assert kinds[-1] == "run.created"
    assert kinds.count("preference.resolved") == 5 and kinds.count("delivery.planned") == 10
    assert verify_chain(session) is None


def test_repeated_subjects_in_one_run_and_reruns_add_nothing(session, small_chunks):
    for key in ("a", "b", "c"):
        make_recipient(session, key)
    specs = [spec("a"), spec("b"), spec("a"), spec("c"), spec("b")]

    first = create_run(session, name="r", message_type="invoice", specs=specs, selection={},
                       created_by="ops", options=WaveOptions())
    again = create_run(session, name="r", message_type="invoice", specs=specs, selection={},
                       created_by="ops", options=WaveOptions())

    assert (first.messages_created, first.messages_existing) == (3, 2)
    assert (again.messages_created, again.messages_existing, again.deliveries) == (0, 5, {})
    assert [len(w.plan or []) for w in again.run.waves] == [0]  # one empty draft wave
    assert session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 6


def test_an_unknown_recipient_in_a_later_chunk_is_refused(session, small_chunks):
    for key in ("a", "b", "c"):
        make_recipient(session, key)
    with pytest.raises(RunError, match="recipient 'nobody' is unknown; sync it first"):
        run_for(session, ["a", "b", "c", "nobody"])


def test_planning_pauses_the_cyclic_collector_and_always_turns_it_back_on(
        session, small_chunks, monkeypatch):
    """Bulk planning runs with the collector paused (see bulk.collector_paused), and a
    refused run leaves it on as before, as does a caller that had it off already."""
    import gc

    seen = []
    real_add = runs._RunBuilder.add

    def add(builder, specs):
        seen.append(gc.isenabled())
        return real_add(builder, specs)

    monkeypatch.setattr(runs._RunBuilder, "add", add)
    for key in ("a", "b", "c"):
        make_recipient(session, key)
    assert gc.isenabled()
    run_for(session, ["a", "b", "c"])
    assert seen == [False, False] and gc.isenabled()
    with pytest.raises(RunError, match="recipient 'nobody' is unknown"):
        run_for(session, ["nobody"])
    assert gc.isenabled()
    gc.disable()
    try:
        run_for(session, ["a", "b"], message_type="notice")
        assert not gc.isenabled()  # nested in a caller's pause: left off
    finally:
        gc.enable()


def test_an_unknown_message_type_is_refused_only_when_a_message_needs_it(session):
    make_recipient(session, "a")
    empty = create_run(session, name="r", message_type="postcard", specs=[], selection={},
                       created_by="ops", options=WaveOptions())
    assert empty.messages_created == 0 and len(empty.run.waves) == 1
    with pytest.raises(ValueError, match="unknown message type 'postcard'"):
        run_for(session, ["a"], message_type="postcard")
