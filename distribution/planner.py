"""The capacity planner: how fast a wave may release so support is never flooded.

Let ``c`` be the expected contacts per delivered message and ``k[0..H]`` the
share of those contacts arriving 0, 1, ... H hours after delivery (it sums to
1). Releasing ``r[s]`` messages in hour ``s`` adds ``r[s]·c·k[t−s]`` forecast
contacts to every later hour ``t``. Going forward hour by hour through the
send window, each hour releases the most that keeps every hour ``t ≥ s`` at or
under ``capacity[t] − baseline[t]``; that gives the schedule, the finish time
and the forecast curve the ops console draws. Pure arithmetic: no database.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# Default decay: most questions come within a few hours of the invoice arriving.
DEFAULT_DECAY = (0.30, 0.25, 0.15, 0.10, 0.08, 0.05, 0.04, 0.03)


class PlanError(ValueError):
    """The planner's inputs are inconsistent; the message names the input."""


@dataclass(frozen=True, slots=True)
class HourPlan:
    """One hour of the plan."""

    start: datetime
    releases: int
    forecast_contacts: float
    capacity: float
    open: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """A release schedule with its contact forecast."""

    hours: list[HourPlan]
    total: int
    finish: datetime | None  # end of the last hour that releases; None if it cannot finish

    @property
    def peak_contacts(self) -> float:
        """The highest forecast contacts in any hour."""
        return max((h.forecast_contacts for h in self.hours), default=0.0)


def plan_releases(
    total: int,
    *,
    start: datetime,
    capacity_per_hour: float,
    contact_rate: float,
    decay: Sequence[float] = DEFAULT_DECAY,
    is_open: Callable[[datetime], bool] = lambda _hour: True,
    baseline: Callable[[datetime], float] = lambda _hour: 0.0,
    max_rate_per_hour: int | None = None,
    horizon_hours: int = 24 * 21,
) -> Plan:
    """Plan the release of ``total`` messages from ``start`` (rounded down to the hour).

    ``is_open(hour)`` says whether sending is allowed in that hour (the send
    window); ``baseline(hour)`` is the support load that exists anyway.
    """
    if total < 0:
        raise PlanError("total must be 0 or more")
    if capacity_per_hour <= 0:
        raise PlanError("capacity_per_hour must be above 0 (contacts support can take per hour)")
    if contact_rate < 0:
        raise PlanError("contact_rate must be 0 or more (expected contacts per message)")
    if not decay or any(share < 0 for share in decay) or not math.isclose(sum(decay), 1.0,
                                                                          abs_tol=1e-6):
        raise PlanError("decay must be shares of 0 or more that add up to 1")
    first = start.replace(minute=0, second=0, microsecond=0)
    span = horizon_hours + len(decay)
    hours = [first + timedelta(hours=i) for i in range(span)]
    headroom = [capacity_per_hour - baseline(hour) for hour in hours]
    forecast = [0.0] * span
    releases = [0] * span
    remaining = total
    for s in range(horizon_hours):
        if remaining == 0:
            break
        if not is_open(hours[s]):
            continue
        allowed = remaining
        if contact_rate > 0:
            for lag, share in enumerate(decay):
                if share > 0:
                    room = headroom[s + lag] - forecast[s + lag]
                    allowed = min(allowed, math.floor(max(room, 0.0) / (contact_rate * share)))
        if max_rate_per_hour is not None:
            allowed = min(allowed, max_rate_per_hour)
        if allowed <= 0:
            continue
        releases[s] = allowed
        remaining -= allowed
        for lag, share in enumerate(decay):
            forecast[s + lag] += allowed * contact_rate * share
    last = max((i for i, r in enumerate(releases) if r), default=None)
    shown = max(last or 0, *(i for i, f in enumerate(forecast) if f > 1e-9), 0) + 1
    return Plan(
        hours=[HourPlan(hours[i], releases[i], round(forecast[i], 3),
                        capacity_per_hour, is_open(hours[i])) for i in range(shown)],
        total=total,
        finish=(hours[last] + timedelta(hours=1)) if remaining == 0 and last is not None
        else (start if total == 0 else None),
    )


def updated_contact_rate(prior: float, observed_contacts: int, delivered: int,
                         prior_weight: int = 200) -> float:
    """Blend the planned contact rate with what the wave has caused so far.

    The prior counts as ``prior_weight`` deliveries' worth of evidence, so a
    handful of early contacts nudges the rate rather than swinging it.
    """
    if delivered <= 0:
        return prior
    return (prior * prior_weight + observed_contacts) / (prior_weight + delivered)
