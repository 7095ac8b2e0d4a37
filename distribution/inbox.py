"""The portal inbox, and what a customer viewing a document means for its deliveries.

A portal-inbox delivery is ``sent`` once it is in the inbox and ``delivered``
when the customer has seen it listed; opening the document marks every
delivery of its messages ``viewed`` (whatever channel brought the customer
there), which the delivery log and the ops console show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, DeliveryState, Message, transition
from distribution.recipients import Recipient
from distribution.sqltypes import utcnow

SEEN_FROM = (DeliveryState.SENT, DeliveryState.DELIVERED)


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One notification in a customer's portal inbox."""

    delivery_id: int
    message_type: str
    subject_key: str
    parameters: dict
    link: str | None
    at: datetime
    unread: bool


def inbox(session: Session, recipient_key: str, *, limit: int = 10) -> list[InboxItem]:
    """The customer's newest inbox notifications."""
    rows = session.execute(
        sa.select(Delivery, Message)
        .join(Message, Message.id == Delivery.message_id)
        .join(Recipient, Recipient.id == Message.recipient_id)
        .where(Recipient.recipient_key == recipient_key, Delivery.channel == ChannelName.PORTAL,
               Delivery.state.in_((DeliveryState.SENT, DeliveryState.DELIVERED,
                                   DeliveryState.VIEWED)))
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc()).limit(limit)).all()
    return [InboxItem(d.id, m.message_type, m.subject_key, dict(m.parameters), m.link,
                      d.sent_at or d.created_at, d.state is DeliveryState.SENT)
            for d, m in rows]


def mark_listed(session: Session, items: list[InboxItem], *, actor: str) -> int:
    """The customer saw these notifications listed: their inbox deliveries are delivered."""
    return sum(transition(session, item.delivery_id, DeliveryState.SENT,
                          DeliveryState.DELIVERED, event="delivery.delivered", actor=actor,
                          payload={"how": "shown in the portal inbox"})
               for item in items if item.unread)


def mark_viewed(session: Session, recipient_key: str, subject_keys: list[str], *,
                reminder_prefix: str | None = None, actor: str) -> int:
    """The customer opened the document: its messages' deliveries become viewed.

    ``reminder_prefix`` also covers the reminders about it (one subject per stage).
    """
    about = Message.subject_key.in_(subject_keys)
    if reminder_prefix:
        about = sa.or_(about, Message.subject_key.startswith(reminder_prefix, autoescape=True))
    ids = list(session.scalars(
        sa.select(Delivery.id).join(Message, Message.id == Delivery.message_id)
        .join(Recipient, Recipient.id == Message.recipient_id)
        .where(Recipient.recipient_key == recipient_key, about,
               Delivery.state.in_(SEEN_FROM))))
    now = utcnow()
    return sum(transition(session, delivery_id, SEEN_FROM, DeliveryState.VIEWED,
                          event="delivery.viewed", actor=actor,
                          payload={"viewed_at": now.isoformat()}) for delivery_id in ids)
