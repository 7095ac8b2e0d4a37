"""Reminder policy: which stage is due, never a burst of stale ones, and when it all stops."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest

from distribution.reminders import (
    DEFAULT_STAGES,
    PolicyError,
    ReminderPolicy,
    Stage,
    Standing,
    due_stages,
)
from distribution.templates import LANGUAGES, render

DUE = date(2026, 10, 31)
POLICY = ReminderPolicy()


def offsets(stages: list[Stage]) -> list[int]:
    return [stage.offset_days for stage in stages]


@pytest.mark.parametrize(("days", "sent", "expected"), [
    (-10, set(), []),  # too early for anything
    (-4, set(), []),
    (-3, set(), [-3]),
    (-1, set(), [-3]),  # the pre-due note is still the latest reached
    (-1, {-3}, []),  # ... and it went out already
    (0, {-3}, [0]),
    (6, {-3, 0}, []),
    (7, {-3, 0}, [7]),
    (30, {-3, 0, 7}, [21]),
    (30, {-3, 0, 7, 21}, []),  # everything sent: the policy is done
])
def test_the_stage_due_today(days, sent, expected):
    assert offsets(due_stages(POLICY, DUE, DUE + timedelta(days=days), sent)) == expected


def test_only_the_latest_missed_stage_is_due_never_a_burst():
    # Nothing went out (the runs did not happen): 25 days late is the final notice alone.
    assert offsets(due_stages(POLICY, DUE, DUE + timedelta(days=25), set())) == [21]
    # An invoice issued on its due date skips the pre-due note.
    assert offsets(due_stages(POLICY, DUE, DUE, set())) == [0]


def test_nothing_earlier_once_a_later_stage_went_out():
    # A policy changed to add a stage before one already sent does not go back in time.
    policy = ReminderPolicy(stages=(Stage(0, 2), Stage(7, 3), Stage(14, 3),
                                    Stage(21, 4, fee=Decimal("7.50"))))
    assert due_stages(policy, DUE, DUE + timedelta(days=15), {21}) == []


@pytest.mark.parametrize("standing", [
    Standing(paid=True), Standing(disputed=True), Standing(void=True),
    Standing(fully_credited=True), Standing(paid=True, disputed=True),
])
def test_nothing_when_the_invoice_is_settled(standing):
    assert standing.stop_reason
    assert due_stages(POLICY, DUE, DUE + timedelta(days=8), {-3, 0}, standing=standing) == []


def test_standing_reasons_and_an_open_invoice():
    assert Standing().stop_reason is None
    assert Standing(fully_credited=True).stop_reason == "fully credited"
    assert Standing(paid=True, void=True).stop_reason == "paid, void"
    assert offsets(due_stages(POLICY, DUE, DUE + timedelta(days=8), {-3, 0},
                              standing=Standing())) == [7]


def test_the_default_policy_escalates_and_charges_only_late():
    assert [s.offset_days for s in DEFAULT_STAGES] == [-3, 0, 7, 21]
    assert [s.tone for s in DEFAULT_STAGES] == [1, 2, 3, 4]
    assert all(s.fee is None for s in DEFAULT_STAGES if s.offset_days <= 7)
    assert DEFAULT_STAGES[-1].fee == Decimal("7.50") and DEFAULT_STAGES[-1].with_pdf
    assert POLICY.fees_for({-3, 0, 7, 21}) == Decimal("7.50")
    assert POLICY.fees_for({-3, 0}) == Decimal("0")


def test_only_fees_of_reminders_sent_are_counted():
    policy = ReminderPolicy(stages=(Stage(7, 3, fee=Decimal("2.50")),
                                    Stage(21, 4, fee=Decimal("7.50"))))
    assert policy.fees_for({7, 21}) == Decimal("10.00")
    assert policy.fees_for({21}) == Decimal("7.50")  # the 7-day one was skipped: no fee


def test_json_round_trip():
    policy = ReminderPolicy(stages=(Stage(-5, 1), Stage(10, 3, fee=Decimal("5.00")),
                                    Stage(30, 4, fee=Decimal("12.50"), with_pdf=True)),
                            final_notice_days=10)
    text = policy.to_json()
    assert json.loads(text)["stages"][1] == {"offset_days": 10, "tone": 3, "fee": "5.00"}
    assert ReminderPolicy.from_json(text) == policy
    assert ReminderPolicy.from_json(json.loads(text)) == policy
    assert ReminderPolicy.from_json(ReminderPolicy().to_json()) == ReminderPolicy()
    assert isinstance(ReminderPolicy.from_json(text).stages[2].fee, Decimal)


@pytest.mark.parametrize(("data", "message"), [
    ('{"stages": []}', "at least one stage"),
    ('{"stages": [{"offset_days": 7, "tone": 3}, {"offset_days": 0, "tone": 2}]}',
     "ascending"),
    ('{"stages": [{"offset_days": 0, "tone": 2}, {"offset_days": 0, "tone": 3}]}',
     "distinct"),
    ('{"stages": [{"offset_days": 0, "tone": 5}]}', "tones run from 1"),
    ('{"stages": [{"offset_days": 0, "tone": 3}, {"offset_days": 7, "tone": 2}]}',
     "escalate"),
    ('{"stages": [{"offset_days": 0, "tone": 2, "fee": "5"}]}', "after the due date"),
    ('{"stages": [{"offset_days": 7, "tone": 3, "fee": "-1"}]}', "negative"),
    ('{"stages": [{"offset_days": 7, "tone": 3, "fee": "lots"}]}', "bad value"),
    ('{"stages": [{"offset_days": 7}]}', "needs tone"),
    ('{"stages": [{"offset_days": 7, "tone": 3, "colour": "red"}]}', "unknown stage field"),
    ("[1, 2]", '"stages" list'),
    ("{not json", "not JSON"),
])
def test_a_policy_that_cannot_work_is_refused(data, message):
    with pytest.raises(PolicyError, match=message):
        ReminderPolicy.from_json(data)


PARAMETERS = {"customer_name": "Ann Peeters", "seller_name": "Testing Telecom",
              "number": "INV-1", "amount": "€ 120,15", "due_date": "31 October 2026",
              "link": "https://portal.example/invoices/INV-1"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_reminder_wording_escalates_in_every_language(language):
    texts = [render("reminder", language, {**PARAMETERS, "tone": tone, "fee": "€ 7,50",
                                           "total": "€ 127,65", "deadline": "14 Nov 2026"})
             for tone in (1, 2, 3, 4)]
    subjects = [t.subject for t in texts]
    assert len(set(subjects)) == 4 and all("INV-1" in s for s in subjects)
    assert len({t.text for t in texts}) == 4
    for rendered in texts:
        assert "€ 120,15" in rendered.text and PARAMETERS["link"] in rendered.text
        assert "password" not in rendered.text.lower()
    assert "€ 7,50" not in texts[0].text and "€ 7,50" not in texts[1].text
    assert "€ 7,50" in texts[3].text and "€ 127,65" in texts[3].text
    assert "14 Nov 2026" in texts[3].text


def test_reminder_without_a_fee_says_nothing_of_fees():
    rendered = render("reminder", "en", {**PARAMETERS, "tone": 4})
    assert "fee" not in rendered.text and "Please pay now." in rendered.text
    assert rendered.subject == "Final notice: invoice INV-1 is overdue"


def test_callers_passing_only_overdue_keep_their_wording():
    assert render("reminder", "en", PARAMETERS).subject == (
        "Reminder: invoice INV-1 is due 31 October 2026")
    assert "is due on 31 October 2026" in render("reminder", "en", PARAMETERS).text
    overdue = render("reminder", "en", {**PARAMETERS, "overdue": True}).text
    assert "was due on 31 October 2026" in overdue


def test_cancel_pending_for_subject_stops_only_unsent_deliveries_of_that_subject(session):
    from distribution.deliveries import DeliveryState
    from distribution.events import events_for
    from distribution.runs import RunError, WaveOptions, cancel_pending_for_subject, create_run
    from tests.distribution.conftest import deliveries_of, make_recipient, set_state, spec

    make_recipient(session, "a")
    # INV-1 with two stages, INV-10 (a prefix of it must not match) and a "%" in a number.
    subjects = ["reminder:1:INV-1:0", "reminder:1:INV-1:7", "reminder:1:INV-10:7",
                "reminder:1:INV%:7"]
    create_run(session, name="r", message_type="reminder",
               specs=[spec("a", subject) for subject in subjects], selection={},
               created_by="test", options=WaveOptions())
    by_subject = {(d.message.subject_key, d.channel.value): d for d in deliveries_of(session)}
    sent = by_subject[("reminder:1:INV-1:0", "email")]
    released = by_subject[("reminder:1:INV-1:7", "email")]
    set_state(session, sent.id, DeliveryState.SENT)
    set_state(session, released.id, DeliveryState.RELEASED)

    cancelled = cancel_pending_for_subject(session, "reminder:1:INV-1:", "invoice paid", "test")

    states = {key: d.state for key, d in
              ((k, d) for d in deliveries_of(session)
               for k in [(d.message.subject_key, d.channel.value)])}
    assert cancelled == sorted(d.id for (subject, _), d in by_subject.items()
                               if subject.startswith("reminder:1:INV-1:")
                               and d.id != sent.id)
    assert states[("reminder:1:INV-1:0", "email")] is DeliveryState.SENT
    assert states[("reminder:1:INV-1:7", "email")] is DeliveryState.CANCELLED
    assert states[("reminder:1:INV-1:7", "portal")] is DeliveryState.CANCELLED
    assert states[("reminder:1:INV-10:7", "email")] is DeliveryState.PENDING
    assert states[("reminder:1:INV%:7", "email")] is DeliveryState.PENDING
    event = events_for(session, "delivery", str(released.id))[-1]
    assert event.kind == "delivery.cancelled" and event.payload["reason"] == "invoice paid"
    assert cancel_pending_for_subject(session, "reminder:1:INV-1:", "again", "test") == []
    assert len(cancel_pending_for_subject(session, "reminder:1:INV%", "x", "test")) == 2
    inv10 = [d for d in deliveries_of(session) if d.message.subject_key == "reminder:1:INV-10:7"]
    assert {d.state for d in inv10} == {DeliveryState.PENDING}  # "%" is not a wildcard
    with pytest.raises(RunError, match="empty"):
        cancel_pending_for_subject(session, "", "x", "test")
