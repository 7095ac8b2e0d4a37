"""Creating runs of messages, splitting them into waves, and steering the waves.

The portal decides *what* to send (which invoices, with which parameters) and
hands over :class:`MessageSpec` rows; this module turns them into messages and
deliveries along each recipient's preferences, idempotently: a message that
already exists for the same subject is not created again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.bulk import allocate_ids, among, collector_paused, insert_rows, present
from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, DeliveryState, Message, idempotency_key_for
from distribution.events import NewEvent, canonical_json, record_event, record_events
from distribution.planner import DEFAULT_DECAY, Plan, plan_releases
from distribution.preferences import (
    ALL_TYPES,
    MessageType,
    Preference,
    ensure_message_types,
    resolve_preloaded,
    unknown_message_type,
)
from distribution.recipients import Address, Recipient
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
    auto_continue: bool = True  # the next wave starts when one is done (see Run)

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


CHUNK_SIZE = 5000  # specs per round of queries and bulk inserts


@collector_paused()
def create_run(session: Session, *, name: str, message_type: str, specs: list[MessageSpec],
               selection: dict[str, Any], created_by: str, options: WaveOptions) -> RunSummary:
    """Create a run with its messages, deliveries and (draft) waves.

    Specs are handled in chunks of :data:`CHUNK_SIZE`: per chunk one query finds
    the messages that already exist, one loads the recipients with their
    addresses and one their preferences; preferences are resolved in memory, and
    messages, deliveries and their events go in with one bulk insert each. The
    log gets, per chunk, a ``preference.resolved`` event per new message and then a
    ``delivery.planned`` event per new delivery; ``run.created`` comes last.
    """
    options.check()
    ensure_message_types(session)
    run = Run(name=name, message_type=message_type, selection=selection, created_by=created_by,
              auto_continue=options.auto_continue)
    session.add(run)
    session.flush()
    summary = RunSummary(run)
    builder = _RunBuilder(session, run, message_type, options, created_by, summary)
    for start in range(0, len(specs), CHUNK_SIZE):
        builder.add(specs[start:start + CHUNK_SIZE])
    builder.finish()
    record_event(session, "run", str(run.id), "run.created", {
        "name": name, "message_type": message_type, "selection": selection,
        "messages": summary.messages_created, "already_sent": summary.messages_existing,
        "deliveries": summary.deliveries}, actor=created_by)
    return summary


_MESSAGE_COLUMNS = ("id", "recipient_id", "message_type", "subject_key", "parameters", "link",
                    "ubl_sha256", "pdf_sha256", "run_id", "created_at")
_DELIVERY_COLUMNS = ("id", "message_id", "channel", "address_id", "wave_id", "idempotency_key",
                     "fallback_for", "fallback_reason", "state", "attempts", "created_at",
                     "updated_at")


@dataclass(frozen=True, slots=True)
class _Subject:
    # What idempotency_key_for reads of a message.
    message_type: str
    subject_key: str


@dataclass(frozen=True, slots=True)
class _Route:
    """A resolution as a run uses it, shared by every recipient with the same inputs."""

    # (channel, its name, address needed, the channel it replaces, why) per delivery
    deliveries: tuple[tuple[ChannelName, str, bool, str | None, str | None], ...]
    channels: list[str]
    unavailable: list[list[str]]
    opted_out: bool
    # The events' payloads as canonical JSON around the values that change (see events).
    resolved_json: tuple[str, str]  # before the run id, after the subject
    planned_json: tuple[str, ...]  # per delivery, up to the message id


@dataclass(frozen=True, slots=True)
class _RunRecipient:
    id: int
    route_key: tuple
    addresses: dict[ChannelName, int]  # the working address per channel, by id


class _RunBuilder:
    """Adds chunks of specs to a run; waves are created as deliveries fill them.

    Resolution depends only on the recipient's two preference rows (this type and
    ``*``) and on which channels have a working address, so it is computed once
    per distinct combination (a handful in a large run) and each recipient only
    keeps its address ids: the same result as :func:`resolve`, message by message.
    """

    def __init__(self, session: Session, run: Run, message_type: str, options: WaveOptions,
                 actor: str, summary: RunSummary) -> None:
        self.session, self.run, self.message_type = session, run, message_type
        self.options, self.actor, self.summary = options, actor, summary
        self.kind: MessageType | None = None
        self.created_subjects: set[str] = set()  # by this run, for repeated specs
        self.recipients: dict[str, _RunRecipient] = {}  # by key, for the whole run
        self.route_inputs: dict[tuple, tuple[dict[str, Any], list[ChannelName]]] = {}
        self.routes: dict[tuple, _Route] = {}
        self.waves: list[Wave] = []
        self.wave_counts: list[int] = []
        self.planned = 0  # deliveries so far, which decides their wave

    def add(self, specs: list[MessageSpec]) -> None:
        """Create the messages, deliveries and events of one chunk of specs."""
        session, message_type = self.session, self.message_type
        # Looked up key by key (see present): the table grows with every chunk.
        existing = present(session, Message.subject_key, {spec.subject_key for spec in specs},
                           Message.message_type == message_type)
        recipients = self.recipients
        self._load_recipients({spec.recipient_key for spec in specs} - recipients.keys())
        new: list[MessageSpec] = []
        for spec in specs:
            if spec.recipient_key not in recipients:
                raise RunError(f"recipient {spec.recipient_key!r} is unknown; sync it first")
            if spec.subject_key in existing or spec.subject_key in self.created_subjects:
                self.summary.messages_existing += 1
                continue
            self.created_subjects.add(spec.subject_key)
            new.append(spec)
        if not new:
            return
        self._message_type()  # refuse an unknown type before writing anything
        now = utcnow()
        targets = [recipients[spec.recipient_key] for spec in new]
        routes = [self._route(recipient.route_key) for recipient in targets]
        message_ids = allocate_ids(session, Message.__table__, len(new))
        delivery_ids = allocate_ids(session, Delivery.__table__,
                                    sum(len(route.deliveries) for route in routes))
        wave_ids = self._wave_ids(len(delivery_ids))  # before any COPY: waves may be added
        insert_rows(session, Message.__table__, _MESSAGE_COLUMNS, (
            (message_id, recipient.id, message_type, spec.subject_key,
             json.dumps(spec.parameters), spec.link, spec.ubl_sha256, spec.pdf_sha256,
             self.run.id, now)
            for message_id, recipient, spec in zip(message_ids, targets, new, strict=True)))
        self.summary.messages_created += len(new)
        planned: list[tuple[Any, ...]] = []  # what each delivery.planned event says

        def delivery_rows() -> Iterator[tuple[Any, ...]]:
            counts, position = self.summary.deliveries, 0
            for message_id, spec, recipient, route in zip(message_ids, new, targets, routes,
                                                         strict=True):
                subject = _Subject(message_type, spec.subject_key)
                for index, (channel, name, needs_address, fallback_for, reason) in enumerate(
                        route.deliveries):
                    delivery_id, wave_id = delivery_ids[position], wave_ids[position]
                    position += 1
                    planned.append((delivery_id, message_id, name, wave_id, fallback_for,
                                    reason, route.planned_json[index]))
                    counts[name] = counts.get(name, 0) + 1
                    yield (delivery_id, message_id, name,
                           recipient.addresses[channel] if needs_address else None, wave_id,
                           idempotency_key_for(subject, channel), fallback_for, reason,
                           DeliveryState.PENDING.value, 0, now, now)

        # Rows are made while the database stores the ones already sent (see bulk).
        insert_rows(session, Delivery.__table__, _DELIVERY_COLUMNS, delivery_rows())
        self.summary.opted_out += sum(1 for route in routes if route.opted_out)
        self.summary.fallbacks += sum(1 for entry in planned if entry[4])
        run_id, actor = self.run.id, self.actor

        def events() -> Iterator[NewEvent]:
            # Payloads written as canonical JSON (the run's largest cost in Python otherwise):
            # preference.resolved {channels, opted_out, run_id, subject, unavailable} and
            # delivery.planned {channel, fallback_for, fallback_reason, message_id, wave_id}.
            for message_id, spec, route in zip(message_ids, new, routes, strict=True):
                before, after = route.resolved_json
                yield NewEvent("message", str(message_id), "preference.resolved",
                               f'{before}{run_id},"subject":{canonical_json(spec.subject_key)}'
                               f"{after}", actor)
            for delivery_id, message_id, _, wave_id, _, _, start in planned:
                yield NewEvent("delivery", str(delivery_id), "delivery.planned",
                               f'{start}{message_id},"wave_id":{wave_id}}}', actor)

        record_events(session, events())

    def finish(self) -> None:
        """Create the (empty) first wave if no delivery did, and plan capacity-sized waves."""
        if not self.waves:
            self._new_wave()
        for wave, count in zip(self.waves, self.wave_counts, strict=True):
            if wave.capacity_per_hour:
                wave.plan = plan_to_json(plan_wave(wave, count, utcnow()))
        self.session.flush()

    def _load_recipients(self, keys: set[str]) -> None:
        """Load recipients not seen yet: one query with addresses, one for preferences."""
        if not keys:
            return
        session = self.session
        ids: dict[str, int] = {}
        best: dict[int, dict[ChannelName, tuple[bool, int]]] = {}
        for row in session.execute(
                sa.select(Recipient.recipient_key, Recipient.id, Address.id.label("address_id"),
                          Address.channel, Address.verified_at)
                .outerjoin(Address, sa.and_(Address.recipient_id == Recipient.id,
                                            Address.dead_since.is_(None)))
                .where(among(session, Recipient.recipient_key, keys))):
            ids[row.recipient_key] = row.id
            working = best.setdefault(row.id, {})
            if row.address_id is not None:
                # As resolve: a verified address first, else the newest (highest id).
                rank = (row.verified_at is not None, row.address_id)
                if rank > working.get(row.channel, (False, 0)):
                    working[row.channel] = rank
        preferences: dict[int, dict[str, Any]] = {}
        if ids:
            for row in session.execute(
                    sa.select(Preference.recipient_id, Preference.message_type,
                              Preference.channels, Preference.opted_out,
                              Preference.email_attachments)
                    .where(among(session, Preference.recipient_id, ids.values()),
                           Preference.message_type.in_((self.message_type, ALL_TYPES)))):
                preferences.setdefault(row.recipient_id, {})[row.message_type] = row
        for key, recipient_id in ids.items():
            chosen = preferences.get(recipient_id, {})
            addresses = {channel: rank[1] for channel, rank in best[recipient_id].items()}
            route_key = (_preference_key(chosen.get(self.message_type)),
                         _preference_key(chosen.get(ALL_TYPES)), frozenset(addresses))
            if route_key not in self.route_inputs:
                self.route_inputs[route_key] = (chosen, sorted(addresses))
            self.recipients[key] = _RunRecipient(recipient_id, route_key, addresses)

    def _route(self, route_key: tuple) -> _Route:
        route = self.routes.get(route_key)
        if route is None:
            chosen, channels = self.route_inputs[route_key]
            # One working address per channel stands for the recipient's own.
            resolution = resolve_preloaded(self._message_type(), chosen, [
                _AddressRow(0, channel, None, None) for channel in channels])
            deliveries = tuple((c.channel, c.channel.value, c.address is not None,
                                c.fallback_for.value if c.fallback_for else None,
                                c.reason or None) for c in resolution.choices)
            names = [c.channel.value for c in resolution.choices]
            unavailable = [[c.value, reason] for c, reason in resolution.unavailable]
            route = self.routes[route_key] = _Route(
                deliveries, names, unavailable, resolution.opted_out,
                (f'{{"channels":{canonical_json(names)},"opted_out":'
                 f'{canonical_json(resolution.opted_out)},"run_id":',
                 f',"unavailable":{canonical_json(unavailable)}}}'),
                tuple(f'{{"channel":{canonical_json(name)},"fallback_for":'
                      f'{canonical_json(fallback_for)},"fallback_reason":'
                      f'{canonical_json(reason)},"message_id":'
                      for _, name, _, fallback_for, reason in deliveries))
        return route

    def _message_type(self) -> MessageType:
        if self.kind is None:
            self.kind = self.session.get(MessageType, self.message_type)
            if self.kind is None:
                raise unknown_message_type(self.message_type)
        return self.kind

    def _wave_ids(self, count: int) -> list[int]:
        """The waves of the next ``count`` deliveries, filling each to the wave size."""
        size = self.options.wave_size
        ids: list[int] = []
        for position in range(self.planned, self.planned + count):
            index = position // size if size else 0
            if index == len(self.waves):
                self._new_wave()
            self.wave_counts[index] += 1
            ids.append(self.waves[index].id)
        self.planned += count
        return ids

    def _new_wave(self) -> None:
        options = self.options
        wave = Wave(run_id=self.run.id, sequence=len(self.waves) + 1,
                    rate_per_minute=options.rate_per_minute,
                    window_start_hour=options.window_start_hour,
                    window_end_hour=options.window_end_hour, weekdays=list(options.weekdays),
                    holidays=list(options.holidays), window_time_zone=options.window_time_zone,
                    capacity_per_hour=options.capacity_per_hour,
                    contact_rate=options.contact_rate,
                    decay=list(options.decay) if options.capacity_per_hour else None,
                    pause_multiple=options.pause_multiple)
        self.session.add(wave)
        self.session.flush()
        self.waves.append(wave)
        self.wave_counts.append(0)


def _preference_key(row: Any) -> tuple | None:
    if row is None:
        return None
    return (tuple(row.channels) if row.channels is not None else None, row.opted_out,
            tuple(row.email_attachments) if row.email_attachments is not None else None)


@dataclass(frozen=True, slots=True)
class _AddressRow:
    # The columns preference resolution reads of an address.
    id: int
    channel: ChannelName
    dead_since: datetime | None
    verified_at: datetime | None


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


def start_wave(session: Session, wave_id: int, *, actor: str,
               after_wave: int | None = None) -> Wave:
    """Start (or resume) releasing a draft or paused wave.

    ``after_wave`` is the wave whose end started this one (a run continuing by itself).
    """
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
    record_event(session, "wave", str(wave.id), event,
                 {"after_wave": after_wave} if after_wave else {}, actor=actor)
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


def cancel_pending_for_subject(session: Session, subject_prefix: str, reason: str,
                               actor: str) -> list[int]:
    """Cancel unsent deliveries of messages whose subject key starts with ``subject_prefix``.

    Pending and released deliveries are cancelled (one conditional UPDATE, so a
    worker that claims one meanwhile keeps it); each gets a ``delivery.cancelled``
    event with the reason. Used to stop reminders once an invoice is paid,
    disputed or credited. Returns the cancelled deliveries' ids.
    """
    if not subject_prefix:
        raise RunError("give a subject prefix; an empty one would cancel everything")
    messages = sa.select(Message.id).where(
        Message.subject_key.startswith(subject_prefix, autoescape=True))
    cancelled = sorted(session.scalars(
        sa.update(Delivery).where(Delivery.message_id.in_(messages),
                                  Delivery.state.in_((DeliveryState.PENDING,
                                                      DeliveryState.RELEASED)))
        .values(state=DeliveryState.CANCELLED, lease_until=None, updated_at=utcnow())
        .returning(Delivery.id).execution_options(synchronize_session=False)))
    for delivery_id in cancelled:
        record_event(session, "delivery", str(delivery_id), "delivery.cancelled",
                     {"subject_prefix": subject_prefix, "reason": reason}, actor=actor)
    return cancelled


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
