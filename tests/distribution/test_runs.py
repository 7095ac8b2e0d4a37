"""Creating runs (idempotently), splitting them into waves, and steering the waves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, DeliveryState, Message, idempotency_key_for
from distribution.events import events_for
from distribution.preferences import set_preference
from distribution.runs import (
    RunError,
    WaveOptions,
    cancel_wave,
    pause_wave,
    planned_rate_per_minute,
    set_rate,
    start_wave,
    wave_counts,
)
from distribution.waves import TokenBucket, Wave, WaveState
from tests.distribution.conftest import deliveries_of, make_recipient, run_for, set_state


def test_one_message_per_spec_and_one_delivery_per_channel(session):
    make_recipient(session, "a")  # defaults: email and portal
    peppol = make_recipient(session, "b", email=None, peppol="0208:0123456749")
    set_preference(session, peppol, "invoice", [ChannelName.PEPPOL])
    out = make_recipient(session, "c")
    set_preference(session, out, "invoice", [ChannelName.EMAIL], opted_out=True)

    summary = run_for(session, ["a", "b", "c"])

    assert summary.messages_created == 3
    assert summary.messages_existing == 0
    assert summary.deliveries == {"email": 1, "portal": 1, "peppol": 1}
    assert summary.opted_out == 1
    assert summary.fallbacks == 0
    messages = list(session.scalars(sa.select(Message).where(
        Message.run_id == summary.run.id).order_by(Message.id)))
    assert [m.subject_key for m in messages] == ["invoice:a", "invoice:b", "invoice:c"]
    assert [[d.channel for d in m.deliveries] for m in messages] == [
        [ChannelName.EMAIL, ChannelName.PORTAL], [ChannelName.PEPPOL], []]
    email = messages[0].deliveries[0]
    assert email.state is DeliveryState.PENDING
    assert email.address.value == "ann@example.com"
    assert email.idempotency_key == idempotency_key_for(messages[0], ChannelName.EMAIL)
    assert email.wave_id == summary.run.waves[0].id
    assert messages[1].deliveries[0].address.value == "0208:0123456749"
    assert [e.kind for e in events_for(session, "delivery", str(email.id))] == [
        "delivery.planned"]
    resolved = events_for(session, "message", str(messages[2].id))
    assert resolved[0].payload["opted_out"] is True


def test_a_fallback_at_creation_is_counted_and_recorded(session):
    recipient = make_recipient(session, "a")
    set_preference(session, recipient, "invoice", [ChannelName.PEPPOL])

    summary = run_for(session, ["a"])

    assert summary.fallbacks == 1
    (delivery,) = deliveries_of(session)
    assert delivery.channel is ChannelName.EMAIL
    assert delivery.fallback_for == "peppol"
    assert delivery.fallback_reason == "no Peppol ID is known"


def test_rerunning_the_same_specs_adds_nothing(session):
    for key in ("a", "b"):
        make_recipient(session, key)
    run_for(session, ["a", "b"])
    before = len(deliveries_of(session))

    again = run_for(session, ["a", "b"])

    assert again.messages_created == 0
    assert again.messages_existing == 2
    assert again.deliveries == {}
    assert len(deliveries_of(session)) == before == 4


def test_waves_are_split_by_wave_size(session):
    keys = [f"k{i}" for i in range(5)]
    for key in keys:
        recipient = make_recipient(session, key, email=f"{key}@example.com")
        set_preference(session, recipient, "invoice", [ChannelName.EMAIL])

    summary = run_for(session, keys, wave_size=2, rate_per_minute=30)

    waves = summary.run.waves
    assert [w.sequence for w in waves] == [1, 2, 3]
    assert [w.state for w in waves] == [WaveState.DRAFT] * 3
    assert [w.rate_per_minute for w in waves] == [30, 30, 30]
    assert [wave_counts(session, w.id) for w in waves] == [
        {"pending": 2}, {"pending": 2}, {"pending": 1}]


def test_unknown_recipient_is_refused(session):
    with pytest.raises(RunError, match="recipient 'nobody' is unknown; sync it first"):
        run_for(session, ["nobody"])


@pytest.mark.parametrize(("options", "message"), [
    ({"wave_size": 0}, "wave_size must be 1 or more"),
    ({"rate_per_minute": 0}, "rate_per_minute must be above 0"),
    ({"window_start_hour": 20, "window_end_hour": 8}, "start hour < end hour"),
    ({"weekdays": (0, 7)}, "weekdays are 0"),
    ({"capacity_per_hour": 10}, "capacity_per_hour and contact_rate together"),
])
def test_inconsistent_options_are_refused(options, message):
    with pytest.raises(RunError, match=message):
        WaveOptions(**options).check()


def _wave(session, keys=("a", "b", "c")) -> Wave:
    for key in keys:
        recipient = make_recipient(session, key, email=f"{key}@example.com")
        set_preference(session, recipient, "invoice", [ChannelName.EMAIL])
    summary = run_for(session, list(keys))
    return summary.run.waves[0]


def test_start_pause_and_resume(session):
    wave = _wave(session)

    start_wave(session, wave.id, actor="ops")
    assert wave.state is WaveState.RUNNING
    assert wave.started_at is not None
    assert session.get(TokenBucket, wave.id) is not None
    first_start = wave.started_at

    pause_wave(session, wave.id, actor="ops", reason="too many calls")
    assert (wave.state, wave.pause_reason) == (WaveState.PAUSED, "too many calls")

    start_wave(session, wave.id, actor="ops")
    assert (wave.state, wave.pause_reason) == (WaveState.RUNNING, None)
    assert wave.started_at == first_start
    assert [e.kind for e in events_for(session, "wave", str(wave.id))] == [
        "wave.started", "wave.paused", "wave.resumed"]


def test_pause_returns_released_deliveries_to_pending(session):
    wave = _wave(session)
    start_wave(session, wave.id, actor="ops")
    deliveries = deliveries_of(session, wave_id=wave.id)
    lease = datetime.now(UTC) + timedelta(minutes=5)
    set_state(session, deliveries[0].id, DeliveryState.RELEASED, lease_until=lease)
    set_state(session, deliveries[1].id, DeliveryState.SENDING, lease_until=lease)

    pause_wave(session, wave.id, actor="ops", reason="lunch")

    states = {d.id: (d.state, d.lease_until) for d in deliveries_of(session, wave_id=wave.id)}
    assert states[deliveries[0].id] == (DeliveryState.PENDING, None)
    assert states[deliveries[1].id][0] is DeliveryState.SENDING  # already with a worker
    assert [e.kind for e in events_for(session, "delivery", str(deliveries[0].id))][-1] == (
        "delivery.returned")
    assert [e.kind for e in events_for(session, "delivery", str(deliveries[1].id))] == [
        "delivery.planned"]


def test_cancel_cancels_only_what_was_not_sent(session):
    wave = _wave(session, keys=("a", "b", "c", "d"))
    start_wave(session, wave.id, actor="ops")
    pending, released, sending, sent = (d.id for d in deliveries_of(session, wave_id=wave.id))
    set_state(session, released, DeliveryState.RELEASED)
    set_state(session, sending, DeliveryState.SENDING)
    set_state(session, sent, DeliveryState.SENT)

    assert cancel_wave(session, wave.id, actor="ops", reason="wrong month") == 2

    states = {d.id: d.state for d in deliveries_of(session, wave_id=wave.id)}
    assert states == {pending: DeliveryState.CANCELLED, released: DeliveryState.CANCELLED,
                      sending: DeliveryState.SENDING, sent: DeliveryState.SENT}
    for delivery_id in (pending, released):
        (event,) = [e for e in events_for(session, "delivery", str(delivery_id))
                    if e.kind == "delivery.cancelled"]
        assert event.payload["reason"] == "wrong month"
        assert event.actor == "ops"
    for delivery_id in (sending, sent):
        assert "delivery.cancelled" not in [
            e.kind for e in events_for(session, "delivery", str(delivery_id))]
    assert wave.state is WaveState.CANCELLED
    assert wave.finished_at is not None
    wave_events = events_for(session, "wave", str(wave.id))
    assert wave_events[-1].kind == "wave.cancelled"
    assert wave_events[-1].payload["cancelled"] == 2


def test_a_draft_wave_can_be_cancelled(session):
    wave = _wave(session)
    assert cancel_wave(session, wave.id, actor="ops", reason="not needed") == 3
    assert wave_counts(session, wave.id) == {"cancelled": 3}


def test_set_rate(session):
    wave = _wave(session)
    start_wave(session, wave.id, actor="ops")

    set_rate(session, wave.id, 12.5, actor="ops")

    assert wave.rate_per_minute == 12.5
    event = events_for(session, "wave", str(wave.id))[-1]
    assert (event.kind, event.payload) == ("wave.rate_changed", {"from": 60.0, "to": 12.5})
    with pytest.raises(RunError, match="rate_per_minute must be above 0; pause the wave"):
        set_rate(session, wave.id, 0, actor="ops")


@pytest.mark.parametrize(("setup", "action", "message"), [
    ([], lambda s, w: pause_wave(s, w, actor="ops", reason="x"),
     r"wave \d+ is draft; only a running wave can pause"),
    (["start"], lambda s, w: start_wave(s, w, actor="ops"),
     r"wave \d+ is running; only a draft or paused wave can be started"),
    (["cancel"], lambda s, w: start_wave(s, w, actor="ops"),
     r"wave \d+ is cancelled; only a draft or paused wave can be started"),
    (["cancel"], lambda s, w: cancel_wave(s, w, actor="ops", reason="again"),
     r"wave \d+ is already cancelled"),
    (["cancel"], lambda s, w: pause_wave(s, w, actor="ops", reason="x"),
     r"wave \d+ is cancelled; only a running wave can pause"),
    (["cancel"], lambda s, w: set_rate(s, w, 10, actor="ops"),
     r"wave \d+ is cancelled; its rate can no longer change"),
])
def test_illegal_transitions_raise(session, setup, action, message):
    wave = _wave(session)
    for step in setup:
        if step == "start":
            start_wave(session, wave.id, actor="ops")
        else:
            cancel_wave(session, wave.id, actor="ops", reason="setup")
    state_before = wave.state
    with pytest.raises(RunError, match=message):
        action(session, wave.id)
    assert wave.state is state_before


def test_unknown_wave_is_refused(session):
    with pytest.raises(RunError, match="there is no wave 987654"):
        start_wave(session, 987654, actor="ops")


def test_capacity_sized_wave_gets_a_plan_and_follows_it(session):
    for key in ("a", "b", "c"):
        recipient = make_recipient(session, key, email=f"{key}@example.com")
        set_preference(session, recipient, "invoice", [ChannelName.EMAIL])

    summary = run_for(session, ["a", "b", "c"], capacity_per_hour=1, contact_rate=0.5,
                      decay=(1.0,), window_start_hour=0, window_end_hour=24,
                      weekdays=(0, 1, 2, 3, 4, 5, 6))

    wave = summary.run.waves[0]
    assert [entry["releases"] for entry in wave.plan] == [2, 1]
    first = datetime.fromisoformat(wave.plan[0]["start"])
    assert planned_rate_per_minute(wave, first + timedelta(minutes=30)) == pytest.approx(2 / 60)
    assert planned_rate_per_minute(wave, first + timedelta(hours=1)) == pytest.approx(1 / 60)


def test_planned_rate_without_a_plan_is_the_fixed_rate(session):
    wave = _wave(session)
    assert planned_rate_per_minute(wave, datetime.now(UTC)) == 60.0


def test_deliveries_are_unique_per_message_and_channel(session):
    _wave(session, keys=("a",))
    (message,) = session.scalars(sa.select(Message)).all()
    session.add(Delivery(message_id=message.id, channel=ChannelName.EMAIL,
                         idempotency_key="another"))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()
