"""What an operator or support agent does to deliveries by hand: retry, resend elsewhere, send now.

Every action goes through the state machine (:func:`distribution.deliveries.transition`
or a new delivery), names the person in its events and never sends twice what
was sent: only ``failed`` and ``in_doubt`` deliveries can be retried.

The dispatcher releases only deliveries of running waves. A retried or added
delivery whose wave still runs, is paused or has not started stays in it (it goes
out with the wave; a paused wave is paused on purpose). One whose wave is done or
cancelled (or that has none) goes into a new *operator wave* of the same run,
started at once, around the clock and without throttle, the way receipts are
sent: reopening a finished wave would restart its capacity plan and mix the
retry into the statistics of a wave the operator already closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.channels.base import ChannelName
from distribution.deliveries import (
    Delivery,
    DeliveryState,
    Message,
    delivery_key,
    idempotency_key_for,
    transition,
)
from distribution.events import record_event
from distribution.preferences import ensure_message_types
from distribution.recipients import Address, Recipient
from distribution.runs import MessageSpec, start_wave
from distribution.sqltypes import utcnow
from distribution.waves import Run, Wave, WaveState

RETRYABLE = (DeliveryState.FAILED, DeliveryState.IN_DOUBT)
# Waves the dispatcher will still release from (now, or once resumed or started).
LIVE_WAVES = (WaveState.RUNNING, WaveState.PAUSED, WaveState.DRAFT)
# How long a delivery released by hand may wait for its send task before the
# reconciler hands it back to its (running) wave.
SEND_NOW_LEASE = timedelta(minutes=5)


class ActionError(ValueError):
    """The action cannot be done; the message says why and what to do instead.

    ``code`` names the case for callers that word it themselves (a translated page).
    """

    def __init__(self, message: str, code: str = "invalid", **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


# Why retry_deliveries skipped a delivery (RetryResult.skipped values).
SKIP_MISSING = "missing"
SKIP_NOT_RETRYABLE = "not_retryable"
SKIP_ADDRESS_DEAD = "address_dead"
SKIP_CHANGED = "changed"


@dataclass
class RetryResult:
    """What :func:`retry_deliveries` did."""

    retried: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)  # delivery id -> SKIP_* code
    new_waves: list[int] = field(default_factory=list)
    waiting: dict[int, str] = field(default_factory=dict)  # wave id -> its state (not running)


def operator_wave(session: Session, run_id: int | None, *, actor: str, reason: str,
                  message_type: str = "notice") -> Wave:
    """A new wave of ``run_id`` (or of a new run) that releases at once, any hour, any day."""
    if run_id is None:
        run = Run(name=f"sent by hand: {reason}"[:200], message_type=message_type,
                  selection={"kind": "operator"}, created_by=actor, auto_continue=False)
        session.add(run)
        session.flush()
        record_event(session, "run", str(run.id), "run.created",
                     {"name": run.name, "message_type": message_type, "by_hand": True},
                     actor=actor)
        run_id = run.id
    sequence = (session.scalar(sa.select(sa.func.max(Wave.sequence))
                               .where(Wave.run_id == run_id)) or 0) + 1
    wave = Wave(run_id=run_id, sequence=sequence, rate_per_minute=600.0, window_start_hour=0,
                window_end_hour=24, weekdays=list(range(7)), holidays=[])
    session.add(wave)
    session.flush()
    record_event(session, "wave", str(wave.id), "wave.created_by_hand",
                 {"run_id": run_id, "sequence": sequence, "reason": reason}, actor=actor)
    start_wave(session, wave.id, actor=actor)
    return wave


def _target_wave(session: Session, delivery: Delivery, made: dict[int | None, Wave], *,
                 actor: str, reason: str) -> tuple[int, bool]:
    """The wave a delivery should be released from, and whether it was made now."""
    wave = session.get(Wave, delivery.wave_id) if delivery.wave_id else None
    if wave is not None and wave.state in LIVE_WAVES:
        return wave.id, False
    run_id = wave.run_id if wave is not None else None
    if run_id not in made:
        made[run_id] = operator_wave(session, run_id, actor=actor, reason=reason,
                                     message_type=delivery.message.message_type)
        return made[run_id].id, True
    return made[run_id].id, False


def retry_deliveries(session: Session, delivery_ids: Iterable[int], *, actor: str,
                     reason: str) -> RetryResult:
    """Move failed and in-doubt deliveries back to ``pending`` for another try.

    A delivery in any other state is skipped (it was sent, or is still on its way),
    as is one whose address is dead (resend it on another channel instead). The
    attempt count starts again; the event keeps the old one. Flushes, never commits.
    """
    if not reason.strip():
        raise ActionError("give a reason for the retry", "reason_missing")
    result = RetryResult()
    made: dict[int | None, Wave] = {}
    for delivery_id in sorted(set(delivery_ids)):
        delivery = session.get(Delivery, delivery_id)
        if delivery is None:
            result.skipped[delivery_id] = SKIP_MISSING
            continue
        if delivery.state not in RETRYABLE:
            result.skipped[delivery_id] = SKIP_NOT_RETRYABLE  # sent, or still on its way
            continue
        if delivery.address is not None and delivery.address.dead_since is not None:
            result.skipped[delivery_id] = SKIP_ADDRESS_DEAD  # resend on another channel
            continue
        wave_id, new = _target_wave(session, delivery, made, actor=actor, reason=reason)
        moved = transition(
            session, delivery_id, RETRYABLE, DeliveryState.PENDING,
            event="delivery.retry_requested", actor=actor,
            payload={"reason": reason, "previous_attempts": delivery.attempts,
                     "last_error": delivery.last_error, "wave_id": wave_id,
                     "from_wave": delivery.wave_id},
            attempts=0, next_attempt_at=None, lease_until=None, wave_id=wave_id)
        if not moved:  # another operator or the reconciler moved it first
            result.skipped[delivery_id] = SKIP_CHANGED
            continue
        result.retried.append(delivery_id)
        if new:
            result.new_waves.append(wave_id)
        wave = session.get(Wave, wave_id)
        if wave.state is not WaveState.RUNNING:
            result.waiting[wave_id] = wave.state.value
    session.expire_all()
    return result


def working_address(recipient: Recipient, channel: ChannelName) -> Address | None:
    """The address to use on ``channel``: not dead, verified ones first, newest first."""
    working = recipient.working_addresses(channel)
    verified = [a for a in working if a.verified_at is not None]
    return (verified or working or [None])[0]


def resend_on_channel(session: Session, delivery_id: int, channel: ChannelName, *,
                      actor: str, reason: str) -> Delivery:
    """Add a delivery of the same message on ``channel`` (a fallback chosen by a person).

    The customer's notice says why their usual channel was not used with the
    original delivery's error (as automatic fallbacks do), never the operator's
    note; the note goes into the events. Flushes, never commits.
    """
    if not reason.strip():
        raise ActionError("give a reason for the resend", "reason_missing")
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise ActionError(f"there is no delivery {delivery_id}", "missing")
    if channel is delivery.channel:
        raise ActionError("choose another channel than the one that failed; to try the same "
                          "one again, retry it", "same_channel")
    message: Message = delivery.message
    existing = session.scalars(sa.select(Delivery).where(
        Delivery.message_id == message.id, Delivery.channel == channel)).first()
    if existing is not None:
        raise ActionError(f"this message already has delivery {existing.id} on "
                          f"{channel.value} ({existing.state.value}); retry that one instead",
                          "channel_taken", delivery_id=existing.id)
    address = None
    if channel is not ChannelName.PORTAL:
        session.expire(message.recipient, ["addresses"])
        address = working_address(message.recipient, channel)
        if address is None:
            raise ActionError(f"the customer has no working {channel.value} address",
                              "no_address")
    wave_id, _new = _target_wave(session, delivery, {}, actor=actor, reason=reason)
    notice = (delivery.last_error or "the message could not be delivered")[:300]
    fallback = Delivery(message_id=message.id, channel=channel, address=address, wave_id=wave_id,
                        idempotency_key=idempotency_key_for(message, channel),
                        fallback_for=delivery.channel.value, fallback_reason=notice)
    session.add(fallback)
    session.flush()
    record_event(session, "delivery", delivery_key(fallback.id), "delivery.fallback_created",
                 {"message_id": message.id, "channel": channel.value,
                  "address_id": address.id if address else None,
                  "replaces_delivery": delivery.id, "reason": reason, "by_hand": True},
                 actor=actor)
    record_event(session, "delivery", delivery_key(delivery.id), "delivery.resent_elsewhere",
                 {"channel": channel.value, "new_delivery": fallback.id, "reason": reason},
                 actor=actor)
    return fallback


def send_now(session: Session, spec: MessageSpec, *, message_type: str, channel: ChannelName,
             address: Address | None, actor: str, reason: str) -> Delivery:
    """A new message with one delivery on ``channel``, released at once (enqueue it after commit).

    For a support agent's resend: its own message (``spec.subject_key`` must be
    new) and delivery, so nothing of the original delivery is touched, in an
    operator wave of its own that starts now, so that the reconciler can hand it
    back to a running wave if the send task is lost. Flushes, never commits.
    """
    if not reason.strip():
        raise ActionError("give a reason for the resend", "reason_missing")
    recipient = session.scalars(sa.select(Recipient).where(
        Recipient.recipient_key == spec.recipient_key)).first()
    if recipient is None:
        raise ActionError(f"there is no recipient {spec.recipient_key}", "missing")
    if channel is not ChannelName.PORTAL and (
            address is None or address.recipient_id != recipient.id
            or address.channel is not channel or address.dead_since is not None):
        raise ActionError(f"choose a working {channel.value} address of this customer",
                          "no_address")
    ensure_message_types(session)
    wave = operator_wave(session, None, actor=actor, reason=reason, message_type=message_type)
    message = Message(recipient_id=recipient.id, message_type=message_type,
                      subject_key=spec.subject_key, parameters=dict(spec.parameters),
                      link=spec.link, ubl_sha256=spec.ubl_sha256, pdf_sha256=spec.pdf_sha256,
                      run_id=wave.run_id)
    session.add(message)
    session.flush()
    now = utcnow()
    delivery = Delivery(message_id=message.id, channel=channel,
                        address_id=address.id if address is not None else None,
                        wave_id=wave.id, state=DeliveryState.RELEASED,
                        lease_until=now + SEND_NOW_LEASE,
                        idempotency_key=idempotency_key_for(message, channel),
                        created_at=now, updated_at=now)
    session.add(delivery)
    session.flush()
    payload: dict[str, Any] = {"channel": channel.value, "reason": reason,
                               "address_id": address.id if address is not None else None}
    record_event(session, "message", str(message.id), "message.sent_by_hand",
                 {"subject_key": spec.subject_key, **payload}, actor=actor)
    record_event(session, "delivery", delivery_key(delivery.id), "delivery.planned",
                 {"message_id": message.id, **payload}, actor=actor)
    record_event(session, "delivery", delivery_key(delivery.id), "delivery.released",
                 {"wave_id": wave.id, "by_hand": True}, actor=actor)
    return delivery
