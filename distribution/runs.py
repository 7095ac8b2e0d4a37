"""Creating runs of messages, splitting them into waves, and steering the waves.

The portal decides *what* to send (which invoices, with which parameters) and
hands over :class:`MessageSpec` rows; this module turns them into messages and
deliveries along each recipient's preferences, idempotently: a message that
already exists for the same subject is not created again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.deliveries import Delivery, DeliveryState, Message, idempotency_key_for
from distribution.events import record_event
from distribution.planner import DEFAULT_DECAY, Plan, plan_releases
from distribution.preferences import ensure_message_types, resolve
from distribution.recipients import Recipient
from distribution.sqltypes import utcnow
from distribution.waves import Run, TokenBucket, Wave, WaveState


class RunError(ValueError):
    """A run or wave request cannot be carried out; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """One message the portal wants sent."""

    recipient_key: str
    subject_key: str
    parameters: dict[str, Any]
    link: str | None = None
    ubl_sha256: str | None = None
    pdf_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class WaveOptions:
    """How a run's waves release: size, rate or capacity plan, and send window."""

    wave_size: int | None = None
    rate_per_minute: float = 60.0
    window_start_hour: int = 8
    window_end_hour: int = 20
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    holidays: tuple[str, ...] = ()
    window_time_zone: str | None = None
    capacity_per_hour: float | None = None
    contact_rate: float | None = None
    decay: tuple[float, ...] = DEFAULT_DECAY
    pause_multiple: float = 2.0

    def check(self) -> None:
        """Refuse inconsistent options with a message naming the option."""
        if self.wave_size is not None and self.wave_size < 1:
            raise RunError("wave_size must be 1 or more")
        if self.rate_per_minute <= 0:
            raise RunError("rate_per_minute must be above 0")
        if not 0 <= self.window_start_hour < self.window_end_hour <= 24:
            raise RunError("the send window needs 0 <= start hour < end hour <= 24")
        if not self.weekdays or any(not 0 <= d <= 6 for d in self.weekdays):
            raise RunError("weekdays are 0 (Monday) to 6 (Sunday), at least one")
        if (self.capacity_per_hour is None) != (self.contact_rate is None):
            raise RunError("give capacity_per_hour and contact_rate together, or neither")


@dataclass
class RunSummary:
    """What creating a run did."""

    run: Run
    messages_created: int = 0
    messages_existing: int = 0
    deliveries: dict[str, int] = field(default_factory=dict)  # per channel
    fallbacks: int = 0
    opted_out: int = 0


def create_run(session: Session, *, name: str, message_type: str, specs: list[MessageSpec],
               selection: dict[str, Any], created_by: str, options: WaveOptions) -> RunSummary:
    """Create a run with its messages, deliveries and (draft) waves."""
    options.check()
    ensure_message_types(session)
    run = Run(name=name, message_type=message_type, selection=selection, created_by=created_by)
    session.add(run)
    session.flush()
    summary = RunSummary(run)
    recipients = {r.recipient_key: r for r in session.scalars(sa.select(Recipient).where(
        Recipient.recipient_key.in_({spec.recipient_key for spec in specs})))}
    new_deliveries: list[Delivery] = []
    for spec in specs:
        recipient = recipients.get(spec.recipient_key)
        if recipient is None:
            raise RunError(f"recipient {spec.recipient_key!r} is unknown; sync it first")
        existing = session.scalars(sa.select(Message).where(
            Message.message_type == message_type, Message.subject_key == spec.subject_key)).first()
        if existing is not None:
            summary.messages_existing += 1
            continue
        message = Message(recipient_id=recipient.id, message_type=message_type,
                          subject_key=spec.subject_key, parameters=spec.parameters,
                          link=spec.link, ubl_sha256=spec.ubl_sha256, pdf_sha256=spec.pdf_sha256,
                          run_id=run.id)
        session.add(message)
        session.flush()
        summary.messages_created += 1
        resolution = resolve(session, recipient, message_type)
        record_event(session, "message", str(message.id), "preference.resolved", {
            "run_id": run.id, "subject": spec.subject_key,
            "channels": [c.channel.value for c in resolution.choices],
            "unavailable": [[c.value, reason] for c, reason in resolution.unavailable],
            "opted_out": resolution.opted_out}, actor=created_by)
        if resolution.opted_out:
            summary.opted_out += 1
        for choice in resolution.choices:
            delivery = Delivery(
                message_id=message.id, channel=choice.channel, address=choice.address,
                idempotency_key=idempotency_key_for(message, choice.channel),
                fallback_for=choice.fallback_for.value if choice.fallback_for else None,
                fallback_reason=choice.reason or None)
            session.add(delivery)
            new_deliveries.append(delivery)
            summary.deliveries[choice.channel.value] = (
                summary.deliveries.get(choice.channel.value, 0) + 1)
            if choice.fallback_for:
                summary.fallbacks += 1
    session.flush()
    _split_into_waves(session, run, new_deliveries, options)
    for delivery in new_deliveries:
        record_event(session, "delivery", str(delivery.id), "delivery.planned", {
            "message_id": delivery.message_id, "channel": delivery.channel.value,
            "wave_id": delivery.wave_id, "fallback_for": delivery.fallback_for,
            "fallback_reason": delivery.fallback_reason}, actor=created_by)
    record_event(session, "run", str(run.id), "run.created", {
        "name": name, "message_type": message_type, "selection": selection,
        "messages": summary.messages_created, "already_sent": summary.messages_existing,
        "deliveries": summary.deliveries}, actor=created_by)
    return summary


def _split_into_waves(session: Session, run: Run, deliveries: list[Delivery],
                      options: WaveOptions) -> None:
    size = options.wave_size or max(len(deliveries), 1)
    chunks = [deliveries[i:i + size] for i in range(0, len(deliveries), size)] or [[]]
    for sequence, chunk in enumerate(chunks, start=1):
        wave = Wave(run_id=run.id, sequence=sequence, rate_per_minute=options.rate_per_minute,
                    window_start_hour=options.window_start_hour,
                    window_end_hour=options.window_end_hour, weekdays=list(options.weekdays),
                    holidays=list(options.holidays), window_time_zone=options.window_time_zone,
                    capacity_per_hour=options.capacity_per_hour,
                    contact_rate=options.contact_rate,
                    decay=list(options.decay) if options.capacity_per_hour else None,
                    pause_multiple=options.pause_multiple)
        session.add(wave)
        session.flush()
        ids = [d.id for d in chunk]
        if ids:
            session.execute(sa.update(Delivery).where(Delivery.id.in_(ids))
                            .values(wave_id=wave.id).execution_options(synchronize_session=False))
        for delivery in chunk:
            delivery.wave_id = wave.id
        if wave.capacity_per_hour:
            wave.plan = plan_to_json(plan_wave(wave, len(chunk), utcnow()))


def plan_wave(wave: Wave, total: int, start: datetime) -> Plan:
    """The capacity plan for ``total`` releases of ``wave`` from ``start``.

    The window is checked in the wave's own time zone (or UTC when it follows
    each recipient's), which is what the forecast chart shows.
    """
    return plan_releases(
        total, start=start, capacity_per_hour=wave.capacity_per_hour,
        contact_rate=wave.contact_rate, decay=wave.decay or DEFAULT_DECAY,
        is_open=lambda hour: wave.window_open(hour, wave.window_time_zone or "UTC"))


def plan_to_json(plan: Plan) -> list[dict[str, Any]]:
    """A plan as stored on the wave."""
    return [{"start": h.start.isoformat(), "releases": h.releases,
             "forecast_contacts": h.forecast_contacts, "capacity": h.capacity, "open": h.open}
            for h in plan.hours]


def planned_rate_per_minute(wave: Wave, now: datetime) -> float:
    """The release rate the wave should have now: its plan's hour, else its fixed rate."""
    if not wave.plan:
        return wave.rate_per_minute
    hour = now.replace(minute=0, second=0, microsecond=0)
    for entry in wave.plan:
        if datetime.fromisoformat(entry["start"]) == hour:
            return entry["releases"] / 60.0
    return wave.rate_per_minute


def _wave_for_update(session: Session, wave_id: int) -> Wave:
    wave = session.get(Wave, wave_id, with_for_update=True)
    if wave is None:
        raise RunError(f"there is no wave {wave_id}")
    return wave


def start_wave(session: Session, wave_id: int, *, actor: str) -> Wave:
    """Start (or resume) releasing a draft or paused wave."""
    wave = _wave_for_update(session, wave_id)
    if wave.state not in (WaveState.DRAFT, WaveState.PAUSED):
        raise RunError(f"wave {wave_id} is {wave.state.value}; only a draft or paused wave "
                       "can be started")
    event = "wave.resumed" if wave.state is WaveState.PAUSED else "wave.started"
    wave.state = WaveState.RUNNING
    wave.pause_reason = None
    wave.started_at = wave.started_at or utcnow()
    if wave.plan is not None and wave.capacity_per_hour:
        # The plan was made for hours that may have passed (at creation, or before a
        # pause): plan what is left from now, or the dispatcher would use the fixed rate.
        replan_pending(session, wave, utcnow())
    if session.get(TokenBucket, wave.id) is None:
        session.add(TokenBucket(wave_id=wave.id, tokens=0.0, burst=1.0, refilled_at=utcnow()))
    record_event(session, "wave", str(wave.id), event, {}, actor=actor)
    return wave


def replan_pending(session: Session, wave: Wave, now: datetime) -> None:
    """Plan the wave's pending deliveries from ``now`` with its current capacity inputs."""
    left = session.scalar(sa.select(sa.func.count()).select_from(Delivery).where(
        Delivery.wave_id == wave.id, Delivery.state == DeliveryState.PENDING))
    wave.plan = plan_to_json(plan_wave(wave, left, now))


def pause_wave(session: Session, wave_id: int, *, actor: str, reason: str) -> Wave:
    """Stop releasing; deliveries released but not yet picked up go back to pending."""
    wave = _wave_for_update(session, wave_id)
    if wave.state is not WaveState.RUNNING:
        raise RunError(f"wave {wave_id} is {wave.state.value}; only a running wave can pause")
    wave.state = WaveState.PAUSED
    wave.pause_reason = reason
    returned = _move_deliveries(session, wave.id, (DeliveryState.RELEASED,),
                                DeliveryState.PENDING)
    for delivery_id in returned:
        record_event(session, "delivery", str(delivery_id), "delivery.returned",
                     {"wave_id": wave.id, "why": "wave paused", "reason": reason}, actor=actor)
    record_event(session, "wave", str(wave.id), "wave.paused", {"reason": reason}, actor=actor)
    return wave


def cancel_wave(session: Session, wave_id: int, *, actor: str, reason: str) -> int:
    """Cancel what the wave has not sent yet; returns how many deliveries were cancelled."""
    wave = _wave_for_update(session, wave_id)
    if wave.state in (WaveState.CANCELLED, WaveState.DONE):
        raise RunError(f"wave {wave_id} is already {wave.state.value}")
    wave.state = WaveState.CANCELLED
    wave.finished_at = utcnow()
    ids = _move_deliveries(session, wave.id, (DeliveryState.PENDING, DeliveryState.RELEASED),
                           DeliveryState.CANCELLED)
    for delivery_id in ids:
        record_event(session, "delivery", str(delivery_id), "delivery.cancelled",
                     {"wave_id": wave.id, "reason": reason}, actor=actor)
    record_event(session, "wave", str(wave.id), "wave.cancelled",
                 {"reason": reason, "cancelled": len(ids)}, actor=actor)
    return len(ids)


def _move_deliveries(session: Session, wave_id: int, states: tuple[DeliveryState, ...],
                     new: DeliveryState) -> list[int]:
    # One UPDATE ... RETURNING: only the rows it really moved get an event, even when a
    # worker claims one between a SELECT and the UPDATE.
    moved = session.scalars(
        sa.update(Delivery).where(Delivery.wave_id == wave_id, Delivery.state.in_(states))
        .values(state=new, lease_until=None, updated_at=utcnow())
        .returning(Delivery.id).execution_options(synchronize_session=False))
    return sorted(moved)


def set_rate(session: Session, wave_id: int, rate_per_minute: float, *, actor: str) -> Wave:
    """Change a wave's release rate (takes effect at the next dispatcher tick)."""
    if rate_per_minute <= 0:
        raise RunError("rate_per_minute must be above 0; pause the wave to stop it")
    wave = _wave_for_update(session, wave_id)
    if wave.state in (WaveState.CANCELLED, WaveState.DONE):
        raise RunError(f"wave {wave_id} is {wave.state.value}; its rate can no longer change")
    before = wave.rate_per_minute
    wave.rate_per_minute = rate_per_minute
    wave.plan = None  # an operator's rate replaces the capacity plan
    record_event(session, "wave", str(wave.id), "wave.rate_changed",
                 {"from": before, "to": rate_per_minute}, actor=actor)
    return wave


def wave_counts(session: Session, wave_id: int) -> dict[str, int]:
    """Deliveries of a wave per state."""
    return {state.value: count for state, count in session.execute(
        sa.select(Delivery.state, sa.func.count()).where(Delivery.wave_id == wave_id)
        .group_by(Delivery.state)).all()}
