"""Outbound webhooks, derived from the event log: which events become which webhook types.

The table other modules can rely on (event kind in the log → webhook type):

    ======================  =====================  ==========================================
    event kind (events.py)  webhook type           note
    ======================  =====================  ==========================================
    invoice.issued          invoice.issued         subject ``invoice`` ``<org id>:<number>``
    delivery.sent           invoice.sent           only deliveries of an invoice/credit note
    delivery.delivered      invoice.delivered      idem
    delivery.viewed         invoice.viewed         idem
    payment.recorded        payment.succeeded      a payment (not a refund) was recorded
    signature.completed     signature.completed    subject ``signature_request`` ``<id>``
    dispute.opened          dispute.opened         subject ``invoice``
    refund.requested        refund.requested       published with :func:`publish_event`
    refund.decided          refund.decided         published with :func:`publish_event`
    wave.paused             wave.paused            subject ``wave`` ``<id>``
    ======================  =====================  ==========================================

Code that has something to announce records the event with :func:`publish_event`
(or ``record_event``) in its own transaction; nothing else is needed. Refund requests
should publish ``refund.requested`` with subject ``("invoice", "<org id>:<number>")``
and a payload holding ``refund_request_id``, ``amount`` and ``currency`` (strings),
``reason`` and ``status`` (``pending_approval`` or ``approved``), and ``refund.decided``
with the same plus ``decision`` (``approved`` or ``rejected``) and ``decided_by``.

Why a cursor over the log and not an outbox: every append to the log holds the lock
on the chain's head until its transaction ends (events.py), so events commit in id
order and a reader that sees event N also sees every committed event below N. A scan
"id > cursor" therefore never skips one that commits late, and :func:`fan_out`
advances the cursor in the same transaction that inserts the deliveries (with the
cursor row locked, and a unique (endpoint, event) constraint as a backstop), so no
event is turned into deliveries twice. The hot path that writes events (a million
per large run) is left untouched.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.deliveries import Delivery, Message
from distribution.events import Event, record_event
from distribution.sqltypes import utcnow
from distribution.webhook_models import (
    WebhookCursor,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookFormat,
)
from distribution.webhook_text import slack_text

WEBHOOK_TYPES: dict[str, str] = {
    "invoice.issued": "invoice.issued",
    "delivery.sent": "invoice.sent",
    "delivery.delivered": "invoice.delivered",
    "delivery.viewed": "invoice.viewed",
    "payment.recorded": "payment.succeeded",
    "signature.completed": "signature.completed",
    "dispute.opened": "dispute.opened",
    "refund.requested": "refund.requested",
    "refund.decided": "refund.decided",
    "wave.paused": "wave.paused",
}
# Every webhook type an endpoint may subscribe to, in the order the console lists them.
EVENT_TYPES: tuple[str, ...] = tuple(dict.fromkeys(WEBHOOK_TYPES.values()))
# Deliveries of these documents are what invoice.sent/delivered/viewed are about.
DOCUMENT_PREFIXES = ("invoice:", "credit_note:")
# Events read per fan-out pass (a large run logs hundreds of thousands a minute).
SCAN_WINDOW = 20_000


class UnknownEventKind(ValueError):
    """:func:`publish_event` was given a kind no webhook type maps from."""


def publish_event(session: Session, kind: str, subject_type: str, subject_key: str,
                  payload: dict[str, Any], *, actor: str) -> Event:
    """Record an event that webhooks announce, in the caller's transaction (never commits).

    ``kind`` must be a key of :data:`WEBHOOK_TYPES` (e.g. ``refund.requested``); the
    worker turns the event into deliveries after the transaction commits.
    """
    if kind not in WEBHOOK_TYPES:
        raise UnknownEventKind(f"{kind!r} is not announced by webhooks; use one of "
                               f"{', '.join(WEBHOOK_TYPES)}")
    return record_event(session, subject_type, subject_key, kind, payload, actor=actor)


def newest_event_id(session: Session) -> int:
    """The id of the newest event (0 for an empty log)."""
    return session.scalar(sa.select(sa.func.max(Event.id))) or 0


def fan_out(session: Session, *, window: int = SCAN_WINDOW,
            now: datetime | None = None) -> tuple[int, bool]:
    """Turn the next events after the cursor into deliveries, in the caller's transaction.

    Returns (deliveries made, caught up). Only events newer than an endpoint's
    ``after_event_id`` reach it, so a new or re-enabled endpoint gets no history.
    """
    cursor = session.scalars(sa.select(WebhookCursor).where(WebhookCursor.id == 1)
                             .with_for_update()).first()
    if cursor is None:
        cursor = WebhookCursor(id=1, last_event_id=0)
        session.add(cursor)
    newest = newest_event_id(session)
    endpoints = list(session.scalars(sa.select(WebhookEndpoint).where(
        WebhookEndpoint.enabled.is_(True)).order_by(WebhookEndpoint.id)))
    if not endpoints:  # no one listens: nothing to read
        cursor.last_event_id = max(cursor.last_event_id, newest)
        cursor.updated_at = utcnow()
        session.flush()
        return 0, True
    # Nothing logged before the oldest subscription can reach anyone: skip it unread.
    low = min(max(cursor.last_event_id, min(e.after_event_id for e in endpoints)), newest)
    upper = min(newest, low + window)
    made = 0
    kinds = sorted({kind for kind, kind_type in WEBHOOK_TYPES.items()
                    if any(kind_type in e.event_types for e in endpoints)})
    if kinds and upper > low:
        rows = session.execute(
            sa.select(Event.id, Event.kind, Event.subject_type, Event.subject_key,
                      Event.payload, Event.at)
            .where(Event.id > low, Event.id <= upper, Event.kind.in_(kinds))
            .order_by(Event.id)).all()
        documents = _delivery_documents(session, rows)
        for row in rows:
            event = webhook_event(row, documents)
            if event is None:
                continue
            for endpoint in endpoints:
                if event["type"] in endpoint.event_types and row.id > endpoint.after_event_id:
                    session.add(WebhookDelivery(
                        endpoint_id=endpoint.id, event_id=row.id, event_type=event["type"],
                        body=render_body(endpoint.format, event),
                        next_attempt_at=now or utcnow()))
                    made += 1
    cursor.last_event_id = max(cursor.last_event_id, upper)
    cursor.updated_at = utcnow()
    session.flush()
    return made, upper >= newest


def _delivery_documents(session: Session, rows: list[sa.Row]) -> dict[str, sa.Row]:
    """For delivery events: each delivery's channel and message (type, subject)."""
    ids = sorted({int(row.subject_key) for row in rows
                  if row.subject_type == "delivery" and row.subject_key.isdigit()})
    found: dict[str, sa.Row] = {}
    for start in range(0, len(ids), 500):
        for item in session.execute(
                sa.select(Delivery.id, Delivery.channel, Message.message_type,
                          Message.subject_key)
                .join(Message, Message.id == Delivery.message_id)
                .where(Delivery.id.in_(ids[start:start + 500]))):
            found[str(item.id)] = item
    return found


def webhook_event(row: sa.Row, documents: dict[str, sa.Row]) -> dict[str, Any] | None:
    """The JSON event a logged event becomes, or None when it is not announced."""
    data: dict[str, Any] = dict(row.payload or {})
    if row.subject_type == "delivery":
        document = documents.get(row.subject_key)
        if document is None or not document.subject_key.startswith(DOCUMENT_PREFIXES):
            return None  # a reminder or a receipt, not an invoice
        kind, _, invoice = document.subject_key.partition(":")
        data.update(delivery_id=int(row.subject_key), channel=str(document.channel.value),
                    message_type=document.message_type, document_kind=kind)
        _invoice_fields(data, invoice)
    elif row.subject_type == "invoice":
        _invoice_fields(data, row.subject_key)
    return {"id": f"evt_{row.id}", "type": WEBHOOK_TYPES[row.kind],
            "created_at": row.at.isoformat(),
            "subject": {"type": row.subject_type, "key": row.subject_key}, "data": data}


def _invoice_fields(data: dict[str, Any], invoice_key: str) -> None:
    organisation, _, number = invoice_key.partition(":")
    if organisation.isdigit() and number:
        data.setdefault("organisation_id", int(organisation))
        data.setdefault("invoice_number", number)


def render_body(body_format: WebhookFormat, event: dict[str, Any]) -> str:
    """The exact bytes (as text) an endpoint of ``body_format`` receives for ``event``."""
    if body_format is WebhookFormat.SLACK:
        return json.dumps({"text": slack_text(event)}, ensure_ascii=False)
    return json.dumps(event, ensure_ascii=False, sort_keys=True, default=str)
