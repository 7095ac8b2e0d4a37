"""The reconciler: nothing silently lost, nothing silently sent twice.

Every minute: a ``released`` delivery whose lease expired (its task was lost)
goes back to ``pending``; a ``sending`` delivery whose lease expired (its worker
died mid-send) becomes ``in_doubt``, because the peer may or may not have it.
Channels whose receiver de-duplicates (web push ``Topic``, FCM collapse key,
Peppol message id, the portal inbox) are retried at once; email is resent with
the same ``Message-ID`` unless the policy says to hold it for an operator.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, DeliveryState, transition
from distribution.sqltypes import utcnow

ACTOR = "reconciler"
DEDUPLICATING = frozenset({ChannelName.WEB_PUSH, ChannelName.FCM, ChannelName.PEPPOL,
                           ChannelName.PORTAL})


@dataclass
class ReconcileResult:
    """How many deliveries each rule moved."""

    requeued: int = 0
    in_doubt: int = 0
    retried_in_doubt: int = 0


def reconcile(session: Session, *, resend_email_in_doubt: bool = True) -> ReconcileResult:
    """Apply the lease rules once, in the caller's transaction."""
    now = utcnow()
    result = ReconcileResult()
    expired = sa.select(Delivery.id, Delivery.state).where(
        Delivery.state.in_((DeliveryState.RELEASED, DeliveryState.SENDING)),
        Delivery.lease_until < now)
    for delivery_id, state in session.execute(expired).all():
        if state is DeliveryState.RELEASED:
            result.requeued += transition(
                session, delivery_id, DeliveryState.RELEASED, DeliveryState.PENDING,
                event="delivery.lease_expired", actor=ACTOR, lease_until=None,
                payload={"why": "its send task was lost before it started"})
        else:
            result.in_doubt += transition(
                session, delivery_id, DeliveryState.SENDING, DeliveryState.IN_DOUBT,
                event="delivery.in_doubt", actor=ACTOR, lease_until=None,
                payload={"why": "the worker stopped while sending; the peer may have it"})
    retry_channels = set(DEDUPLICATING) | ({ChannelName.EMAIL} if resend_email_in_doubt else set())
    doubtful = sa.select(Delivery.id, Delivery.channel).where(
        Delivery.state == DeliveryState.IN_DOUBT)
    for delivery_id, channel in session.execute(doubtful).all():
        if channel in retry_channels:
            result.retried_in_doubt += transition(
                session, delivery_id, DeliveryState.IN_DOUBT, DeliveryState.PENDING,
                event="delivery.retry_in_doubt", actor=ACTOR, next_attempt_at=None,
                payload={"why": "the receiver recognises a resend by its id",
                         "channel": channel.value})
    return result
