"""Contacts a wave causes steer it: above forecast it slows, far above it pauses itself."""

from __future__ import annotations

from datetime import timedelta

import pytest

from distribution.deliveries import DeliveryState
from distribution.events import events_for
from distribution.feedback import (
    UnknownRecipient,
    _share_by,
    record_contact,
    steer_wave,
    wave_feedback,
)
from distribution.runs import start_wave
from distribution.sqltypes import utcnow
from distribution.waves import ContactSource, WaveState
from tests.distribution.conftest import deliveries_of, make_recipient, run_for, set_state


@pytest.fixture
def sent_wave(session):
    """A running capacity-planned wave whose 20 email deliveries were sent 2 hours ago."""
    keys = [f"r{i}" for i in range(20)]
    for key in keys:
        make_recipient(session, key, email=f"{key}@example.com")
    summary = run_for(session, keys, capacity_per_hour=50, contact_rate=0.05,
                      decay=(0.5, 0.5), window_start_hour=0, window_end_hour=24,
                      weekdays=tuple(range(7)))
    wave = summary.run.waves[0]
    start_wave(session, wave.id, actor="test")
    two_hours_ago = utcnow() - timedelta(hours=2)
    for delivery in deliveries_of(session):
        set_state(session, delivery.id, DeliveryState.SENT, sent_at=two_hours_ago)
    session.flush()
    return wave


def test_share_by_follows_the_decay():
    decay = [0.5, 0.3, 0.2]
    assert _share_by(decay, 0) == 0
    assert _share_by(decay, 0.5) == pytest.approx(0.25)
    assert _share_by(decay, 1.5) == pytest.approx(0.65)
    assert _share_by(decay, 10) == pytest.approx(1.0)


def test_forecast_for_what_was_delivered(session, sent_wave):
    feedback = wave_feedback(session, sent_wave, utcnow())
    # 20 messages (email and portal count once), all decay hours past: 20 × 0.05 = 1.0
    assert feedback.delivered_messages == 20
    assert feedback.expected_contacts == pytest.approx(1.0, abs=0.01)
    assert feedback.observed_contacts == 0


def test_a_contact_counts_against_the_wave_that_reached_the_recipient(session, sent_wave):
    contact = record_contact(session, "r3", ContactSource.CALL, subject_key="invoice:r3",
                             actor="callcentre")
    assert contact.wave_id == sent_wave.id and contact.message_id is not None
    assert [e.kind for e in events_for(session, "recipient", "r3")][-1] == "contact.recorded"
    with pytest.raises(UnknownRecipient):
        record_contact(session, "nobody", ContactSource.CALL, actor="callcentre")


def test_contacts_within_forecast_change_nothing(session, sent_wave):
    record_contact(session, "r1", ContactSource.QUESTION, actor="t")
    assert steer_wave(session, sent_wave, utcnow(), actor="t") is None
    assert sent_wave.state is WaveState.RUNNING and sent_wave.contact_rate == 0.05


def test_contacts_above_forecast_slow_the_wave(session, sent_wave):
    for key in ("r1", "r2", "r3"):  # 3 against 1.0 forecast: above, not yet 2× with 5 minimum
        record_contact(session, key, ContactSource.QUESTION, actor="t")
    assert steer_wave(session, sent_wave, utcnow(), actor="t") == "slowed"
    assert sent_wave.state is WaveState.RUNNING
    # (0.05 × 200 + 3) / (200 + 20) = 0.0591
    assert sent_wave.contact_rate == pytest.approx(13 / 220)
    assert events_for(session, "wave", str(sent_wave.id))[-1].kind == "wave.slowed"


def test_contacts_far_above_forecast_pause_the_wave_with_the_reason(session, sent_wave):
    for i in range(6):
        record_contact(session, f"r{i}", ContactSource.DISPUTE, actor="t")
    assert steer_wave(session, sent_wave, utcnow(), actor="t") == "paused"
    assert sent_wave.state is WaveState.PAUSED
    assert "6 contacts against 1.0 forecast for 20 delivered" in sent_wave.pause_reason
