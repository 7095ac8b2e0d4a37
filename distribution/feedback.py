"""Contacts caused by a wave steer it (ARCHITECTURE decision 6).

Disputes, questions and calls about a message are recorded as support contacts
against the wave that sent it. Each dispatcher tick compares them with the
forecast for what the wave has delivered so far: above forecast the planned
contact rate is raised (a weighted average of prior and observed) and the rest
of the wave is re-planned, so it slows; above ``pause_multiple`` times the
forecast the wave pauses itself and records why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.deliveries import Delivery, DeliveryState, Message
from distribution.events import record_event
from distribution.planner import DEFAULT_DECAY, updated_contact_rate
from distribution.recipients import Recipient
from distribution.waves import ContactSource, SupportContact, Wave, WaveState

# A handful of contacts is noise; never pause on fewer than this.
MIN_CONTACTS_TO_PAUSE = 5
DELIVERED = (DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.VIEWED)


class UnknownRecipient(LookupError):
    """No recipient has the given key."""


@dataclass(frozen=True, slots=True)
class WaveFeedback:
    """What a wave has caused so far, against its forecast."""

    delivered_messages: int
    observed_contacts: int
    expected_contacts: float


def record_contact(session: Session, recipient_key: str, source: ContactSource, *,
                   subject_key: str | None = None, actor: str) -> SupportContact:
    """Record a contact; it counts against the wave that last reached the recipient about it."""
    recipient = session.scalars(sa.select(Recipient).where(
        Recipient.recipient_key == recipient_key)).first()
    if recipient is None:
        raise UnknownRecipient(f"no recipient {recipient_key!r}")
    query = (sa.select(Message.id, Delivery.wave_id)
             .join(Delivery, Delivery.message_id == Message.id)
             .where(Message.recipient_id == recipient.id, Delivery.wave_id.is_not(None),
                    Delivery.state.in_(DELIVERED))
             .order_by(Delivery.sent_at.desc()).limit(1))
    if subject_key:
        query = query.where(Message.subject_key == subject_key)
    found = session.execute(query).first()
    contact = SupportContact(recipient_id=recipient.id, source=source,
                             message_id=found.id if found else None,
                             wave_id=found.wave_id if found else None)
    session.add(contact)
    session.flush()
    record_event(session, "recipient", recipient_key, "contact.recorded",
                 {"source": source.value, "message_id": contact.message_id,
                  "wave_id": contact.wave_id, "subject": subject_key}, actor=actor)
    return contact


def wave_feedback(session: Session, wave: Wave, now: datetime) -> WaveFeedback:
    """Messages the wave delivered, contacts they caused, and the forecast for them by now."""
    first_sent = (sa.select(Delivery.message_id, sa.func.min(Delivery.sent_at).label("sent_at"))
                  .where(Delivery.wave_id == wave.id, Delivery.state.in_(DELIVERED))
                  .group_by(Delivery.message_id).subquery())
    sent_times = list(session.scalars(sa.select(first_sent.c.sent_at)))
    decay = wave.decay or list(DEFAULT_DECAY)
    expected = (wave.contact_rate or 0.0) * sum(
        _share_by(decay, (now - sent).total_seconds() / 3600.0) for sent in sent_times if sent)
    observed = session.scalar(sa.select(sa.func.count()).select_from(SupportContact).where(
        SupportContact.wave_id == wave.id)) or 0
    return WaveFeedback(len(sent_times), observed, expected)


def _share_by(decay: list[float], hours: float) -> float:
    """The share of a message's contacts expected within ``hours`` of its delivery."""
    if hours <= 0:
        return 0.0
    whole = int(hours)
    share = sum(decay[:whole])
    if whole < len(decay):
        share += decay[whole] * (hours - whole)
    return min(share, 1.0)


def steer_wave(session: Session, wave: Wave, now: datetime, *, actor: str) -> str | None:
    """Slow or pause a running wave whose contacts run above forecast; says what it did."""
    if wave.state is not WaveState.RUNNING or not wave.contact_rate:
        return None
    feedback = wave_feedback(session, wave, now)
    if feedback.observed_contacts <= feedback.expected_contacts:
        return None
    if (feedback.observed_contacts >= MIN_CONTACTS_TO_PAUSE and
            feedback.observed_contacts > wave.pause_multiple * max(feedback.expected_contacts,
                                                                   1.0)):
        from distribution.runs import pause_wave

        reason = (f"paused itself: {feedback.observed_contacts} contacts against "
                  f"{feedback.expected_contacts:.1f} forecast for "
                  f"{feedback.delivered_messages} delivered (more than "
                  f"{wave.pause_multiple:g} times the forecast)")
        pause_wave(session, wave.id, actor=actor, reason=reason)
        return "paused"
    new_rate = updated_contact_rate(wave.contact_rate, feedback.observed_contacts,
                                    feedback.delivered_messages)
    if new_rate <= wave.contact_rate * 1.05:
        return None  # not worth a re-plan yet
    before = wave.contact_rate
    wave.contact_rate = new_rate
    from distribution.runs import replan_pending

    replan_pending(session, wave, now)
    record_event(session, "wave", str(wave.id), "wave.slowed",
                 {"contact_rate_from": before, "contact_rate_to": round(new_rate, 5),
                  "observed": feedback.observed_contacts,
                  "expected": round(feedback.expected_contacts, 2)}, actor=actor)
    return "slowed"
