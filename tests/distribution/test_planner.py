"""The capacity planner, against schedules worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from distribution.planner import PlanError, plan_releases, updated_contact_rate

START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


def releases(plan) -> list[int]:
    return [hour.releases for hour in plan.hours]


def forecast(plan) -> list[float]:
    return [hour.forecast_contacts for hour in plan.hours]


def test_hand_computed_schedule():
    # Capacity 10/h, 0.1 contacts per message, half in the first hour, half in the next.
    # Hour 0: 10 / (0.1 × 0.5) = 200 (fills hours 0 and 1 with 10 each); hour 1: no room
    # left in hour 1; hour 2: 200 again; hour 3: none; hour 4: the last 100 (5 + 5).
    plan = plan_releases(500, start=START, capacity_per_hour=10, contact_rate=0.1,
                         decay=[0.5, 0.5])

    assert releases(plan) == [200, 0, 200, 0, 100, 0]
    assert forecast(plan) == [10.0, 10.0, 10.0, 10.0, 5.0, 5.0]
    assert [h.start for h in plan.hours] == [START + timedelta(hours=i) for i in range(6)]
    assert plan.total == 500
    assert plan.finish == START + timedelta(hours=5)
    assert plan.peak_contacts == 10.0


def test_closed_hours_are_skipped():
    closed = {1, 2}
    plan = plan_releases(500, start=START, capacity_per_hour=10, contact_rate=0.1,
                         decay=[0.5, 0.5], is_open=lambda hour: hour.hour not in closed)

    assert releases(plan) == [200, 0, 0, 200, 0, 100, 0]
    assert [h.open for h in plan.hours] == [True, False, False, True, True, True, True]
    assert plan.finish == START + timedelta(hours=6)


def test_start_is_rounded_down_to_the_hour_and_finish_is_the_end_of_the_last_hour():
    plan = plan_releases(300, start=START.replace(hour=10, minute=37), capacity_per_hour=10,
                         contact_rate=0.1, decay=[0.5, 0.5])

    assert plan.hours[0].start == START.replace(hour=10)
    assert releases(plan)[:3] == [200, 0, 100]
    assert plan.finish == START.replace(hour=13)


def test_baseline_load_reduces_headroom():
    plan = plan_releases(100, start=START, capacity_per_hour=10, contact_rate=0.1,
                         decay=[1.0], baseline=lambda hour: 6.0)

    assert releases(plan) == [40, 40, 20]  # (10 − 6) / 0.1 per hour


def test_forecast_never_exceeds_capacity_in_any_hour():
    def baseline(hour: datetime) -> float:
        return 5.0 + (hour.hour % 4)

    plan = plan_releases(20_000, start=START, capacity_per_hour=40, contact_rate=0.03,
                         is_open=lambda hour: 8 <= hour.hour < 18 and hour.weekday() < 5,
                         baseline=baseline)

    assert sum(releases(plan)) == 20_000
    assert plan.finish is not None
    for hour in plan.hours:
        assert hour.forecast_contacts <= 40 - baseline(hour.start) + 1e-3, hour
        if not hour.open:
            assert hour.releases == 0, hour
    assert plan.finish == max(h.start for h in plan.hours if h.releases) + timedelta(hours=1)


def test_max_rate_caps_each_hour():
    plan = plan_releases(100, start=START, capacity_per_hour=1000, contact_rate=0.1,
                         decay=[1.0], max_rate_per_hour=30)

    assert releases(plan) == [30, 30, 30, 10]


def test_no_contacts_expected_releases_everything_at_once():
    plan = plan_releases(1234, start=START, capacity_per_hour=1, contact_rate=0.0)

    assert releases(plan) == [1234]
    assert plan.finish == START + timedelta(hours=1)


def test_nothing_to_send_finishes_at_start():
    plan = plan_releases(0, start=START, capacity_per_hour=10, contact_rate=0.1)
    assert plan.finish == START
    assert sum(releases(plan)) == 0


def test_a_plan_that_cannot_finish_in_the_horizon_has_no_finish():
    plan = plan_releases(10_000, start=START, capacity_per_hour=10, contact_rate=0.1,
                         decay=[1.0], horizon_hours=3)

    assert releases(plan)[:3] == [100, 100, 100]
    assert plan.finish is None


@pytest.mark.parametrize(("changes", "message"), [
    ({"decay": [0.5, 0.4]}, "decay must be shares of 0 or more that add up to 1"),
    ({"decay": [1.5, -0.5]}, "decay must be shares of 0 or more that add up to 1"),
    ({"decay": []}, "decay must be shares"),
    ({"capacity_per_hour": 0}, "capacity_per_hour must be above 0"),
    ({"capacity_per_hour": -5}, "capacity_per_hour must be above 0"),
    ({"contact_rate": -0.1}, "contact_rate must be 0 or more"),
    ({"total": -1}, "total must be 0 or more"),
])
def test_bad_inputs_are_refused(changes, message):
    arguments = {"total": 10, "start": START, "capacity_per_hour": 10, "contact_rate": 0.1,
                 "decay": [0.5, 0.5]}
    arguments.update(changes)
    total = arguments.pop("total")
    with pytest.raises(PlanError, match=message):
        plan_releases(total, **arguments)


def test_updated_contact_rate_blends_prior_and_observation():
    # The prior counts as 200 deliveries at 0.1 (20 contacts); 100 delivered caused 30.
    assert updated_contact_rate(0.1, 30, 100) == pytest.approx(50 / 300)
    assert updated_contact_rate(0.1, 30, 100, prior_weight=0) == pytest.approx(0.3)
    assert updated_contact_rate(0.1, 0, 0) == 0.1
    assert updated_contact_rate(0.1, 0, 1800) == pytest.approx(20 / 2000)
