"""What the ops console shows about runs and waves: progress, rates, contacts, funnel.

Read-only queries, a fixed handful per page whatever the size of the run (counts
are grouped in SQL; only the last hour's send times are read row by row).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.bulk import among
from distribution.deliveries import Delivery, DeliveryState, Message
from distribution.feedback import wave_feedback
from distribution.runs import planned_rate_per_minute
from distribution.sqltypes import utcnow
from distribution.waves import Run, SupportContact, Wave, WaveState
from portal.ops.charts import ForecastHour

# Deliveries still on their way; the rest are final.
OPEN_STATES = (DeliveryState.PENDING, DeliveryState.RELEASED, DeliveryState.SENDING,
               DeliveryState.IN_DOUBT)
SENT_STATES = (DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.VIEWED)
RATE_WINDOW = timedelta(minutes=10)


@dataclass
class WaveStatus:
    """One wave as the live view shows it."""

    wave: Wave
    by_state: Counter = field(default_factory=Counter)
    by_channel: dict[str, Counter] = field(default_factory=dict)
    sent_last_window: int = 0
    planned_per_minute: float = 0.0
    contacts: int = 0
    expected_contacts: float | None = None

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def done(self) -> int:
        """Deliveries in a final state (sent, failed, cancelled...)."""
        return self.total - sum(self.by_state[state.value] for state in OPEN_STATES)

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100

    @property
    def actual_per_minute(self) -> float:
        return self.sent_last_window / (RATE_WINDOW.total_seconds() / 60)


@dataclass
class RunStatus:
    """A run with its waves, totals and funnel."""

    run: Run
    waves: list[WaveStatus]
    by_state: Counter
    by_channel: dict[str, Counter]
    funnel: list[tuple[str, int]]

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def done(self) -> int:
        return sum(wave.done for wave in self.waves)

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100

    @property
    def state(self) -> str:
        """running, paused, draft, done or cancelled: the most active of its waves."""
        states = {status.wave.state for status in self.waves}
        for candidate in (WaveState.RUNNING, WaveState.PAUSED, WaveState.DRAFT):
            if candidate in states:
                return candidate.value
        return WaveState.CANCELLED.value if WaveState.CANCELLED in states else "done"


def run_list(session: Session, *, limit: int = 50) -> list[tuple[Run, Counter, str]]:
    """The newest runs with their deliveries per state and overall state (two queries)."""
    runs = list(session.scalars(sa.select(Run).order_by(Run.id.desc()).limit(limit)))
    if not runs:
        return []
    ids = [run.id for run in runs]
    counts: dict[int, Counter] = {run_id: Counter() for run_id in ids}
    for run_id, state, count in session.execute(
            sa.select(Wave.run_id, Delivery.state, sa.func.count())
            .join(Delivery, Delivery.wave_id == Wave.id)
            .where(Wave.run_id.in_(ids)).group_by(Wave.run_id, Delivery.state)):
        counts[run_id][state.value] += count
    wave_states: dict[int, set[WaveState]] = {run_id: set() for run_id in ids}
    for run_id, state in session.execute(
            sa.select(Wave.run_id, Wave.state).where(Wave.run_id.in_(ids)).distinct()):
        wave_states[run_id].add(state)
    result = []
    for run in runs:
        states = wave_states[run.id]
        overall = next((s.value for s in (WaveState.RUNNING, WaveState.PAUSED, WaveState.DRAFT)
                        if s in states), "cancelled" if WaveState.CANCELLED in states
                       else "done")
        result.append((run, counts[run.id], overall))
    return result


def run_status(session: Session, run: Run, now: datetime | None = None) -> RunStatus:
    """Everything the run page shows, in a fixed number of queries."""
    now = now or utcnow()
    waves = list(session.scalars(sa.select(Wave).where(Wave.run_id == run.id)
                                 .order_by(Wave.sequence)))
    statuses = {wave.id: WaveStatus(wave, planned_per_minute=planned_rate_per_minute(wave, now))
                for wave in waves}
    run_states: Counter = Counter()
    run_channels: dict[str, Counter] = {}
    for wave_id, state, channel, count in session.execute(
            sa.select(Delivery.wave_id, Delivery.state, Delivery.channel, sa.func.count())
            .join(Wave, Wave.id == Delivery.wave_id).where(Wave.run_id == run.id)
            .group_by(Delivery.wave_id, Delivery.state, Delivery.channel)):
        status = statuses[wave_id]
        status.by_state[state.value] += count
        status.by_channel.setdefault(channel.value, Counter())[state.value] += count
        run_states[state.value] += count
        run_channels.setdefault(channel.value, Counter())[state.value] += count
    for wave_id, count in session.execute(
            sa.select(Delivery.wave_id, sa.func.count())
            .join(Wave, Wave.id == Delivery.wave_id)
            .where(Wave.run_id == run.id, Delivery.sent_at >= now - RATE_WINDOW)
            .group_by(Delivery.wave_id)):
        statuses[wave_id].sent_last_window = count
    for wave_id, count in session.execute(
            sa.select(SupportContact.wave_id, sa.func.count())
            .join(Wave, Wave.id == SupportContact.wave_id).where(Wave.run_id == run.id)
            .group_by(SupportContact.wave_id)):
        statuses[wave_id].contacts = count
    for wave in waves:
        # The forecast needs each delivered message's time; only for waves under way.
        if wave.contact_rate and wave.state in (WaveState.RUNNING, WaveState.PAUSED):
            statuses[wave.id].expected_contacts = wave_feedback(session, wave, now)\
                .expected_contacts
    return RunStatus(run, list(statuses.values()), run_states, run_channels,
                     funnel(session, run))


def funnel(session: Session, run: Run) -> list[tuple[str, int]]:
    """Messages planned, sent, delivered and viewed (best delivery of each), and paid."""
    best = (sa.select(Delivery.message_id,
                      sa.func.max(sa.case((Delivery.state == DeliveryState.VIEWED, 3),
                                          (Delivery.state == DeliveryState.DELIVERED, 2),
                                          (Delivery.state == DeliveryState.SENT, 1),
                                          else_=0)).label("stage"))
            .join(Message, Message.id == Delivery.message_id)
            .where(Message.run_id == run.id).group_by(Delivery.message_id).subquery())
    stages = Counter(dict(session.execute(
        sa.select(best.c.stage, sa.func.count()).group_by(best.c.stage)).all()))
    planned = sum(stages.values())
    sent = stages[1] + stages[2] + stages[3]
    delivered = stages[2] + stages[3]
    return [("planned", planned), ("sent", sent), ("delivered", delivered),
            ("viewed", stages[3]), ("paid", paid_messages(session, run))]


def paid_messages(session: Session, run: Run) -> int:
    """Messages of the run whose invoice is paid now (the portal's invoices, by subject)."""
    from portal.issuing import invoice_key
    from portal.models import Invoice, InvoiceStatus

    keys = {subject.split(":", 1)[1] for subject in session.scalars(
        sa.select(Message.subject_key).where(Message.run_id == run.id)) if ":" in subject}
    numbers = sorted({key.split(":", 1)[1] for key in keys if ":" in key})
    paid = 0
    for start in range(0, len(numbers), 5000):
        for invoice in session.scalars(sa.select(Invoice).where(
                Invoice.status == InvoiceStatus.PAID,
                among(session, Invoice.number, numbers[start:start + 5000]))):
            paid += invoice_key(invoice) in keys
    return paid


def forecast_hours(plan: list[dict[str, Any]] | None) -> list[ForecastHour]:
    """A wave's stored capacity plan as chart hours."""
    return [ForecastHour(datetime.fromisoformat(entry["start"]), entry["releases"],
                         entry["forecast_contacts"], entry["capacity"], entry["open"])
            for entry in plan or []]


def fixed_rate_hours(wave: Wave, total: int, start: datetime, *,
                     horizon_hours: int = 24 * 21) -> tuple[list[ForecastHour], datetime | None]:
    """Releases per hour of a wave at a fixed rate (no capacity plan), with its finish."""
    hours: list[ForecastHour] = []
    hour = start.replace(minute=0, second=0, microsecond=0)
    left, per_hour = total, max(int(wave.rate_per_minute * 60), 1)
    for _ in range(horizon_hours):
        if left <= 0:
            break
        is_open = wave.window_open(hour, wave.window_time_zone or "UTC")
        releases = min(left, per_hour) if is_open else 0
        left -= releases
        hours.append(ForecastHour(hour, releases, 0.0, 0.0, is_open))
        hour += timedelta(hours=1)
    finish = hours[-1].start + timedelta(hours=1) if hours and left <= 0 else None
    return hours, finish


def sent_per_minute(session: Session, run: Run, now: datetime | None = None,
                    minutes: int = 60) -> list[tuple[datetime, int]]:
    """Deliveries of the run sent in each of the last ``minutes`` minutes."""
    now = (now or utcnow()).replace(second=0, microsecond=0)
    since = now - timedelta(minutes=minutes - 1)
    buckets = Counter(sent.replace(second=0, microsecond=0) for sent in session.scalars(
        sa.select(Delivery.sent_at).join(Wave, Wave.id == Delivery.wave_id)
        .where(Wave.run_id == run.id, Delivery.sent_at >= since)))
    return [(since + timedelta(minutes=i), buckets.get(since + timedelta(minutes=i), 0))
            for i in range(minutes)]
