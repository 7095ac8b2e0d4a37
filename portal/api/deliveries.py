"""/api/v1/invoices/{number}/deliveries and /resend: where an invoice went, and send it again."""

from __future__ import annotations

import sqlalchemy as sa

from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, Message
from portal.api import bp
from portal.api.auth import current_caller
from portal.api.common import answer, invoice_by_number, settings
from portal.api.errors import ApiError
from portal.api.spec import Param, body, operation, query
from portal.audit_trail import invoice_trail, message_subjects
from portal.db import db_session
from portal.ops.customer_lookup import LookupError_, resend_document, resend_targets
from portal.recipients_sync import sync_customer

ORG_PARAM = Param("organisation_id", {"type": "integer", "minimum": 1},
                  "The seller, when several sellers use the same invoice number.")
STRING_OR_NULL = {"type": ["string", "null"]}
DELIVERY_SCHEMA = {
    "type": "object", "required": ["id", "channel", "state", "attempts"],
    "properties": {
        "id": {"type": "integer"}, "message_id": {"type": "integer"},
        "message_type": {"type": "string"}, "channel": {"type": "string"},
        "state": {"type": "string"}, "attempts": {"type": "integer"},
        "last_error": STRING_OR_NULL, "sent_at": STRING_OR_NULL,
        "updated_at": {"type": "string"},
    },
}


def delivery_json(delivery: Delivery, message_type: str) -> dict:
    """A delivery as the API shows it."""
    return {"id": delivery.id, "message_id": delivery.message_id, "message_type": message_type,
            "channel": delivery.channel.value, "state": delivery.state.value,
            "attempts": delivery.attempts, "last_error": delivery.last_error,
            "sent_at": delivery.sent_at.isoformat() if delivery.sent_at else None,
            "updated_at": delivery.updated_at.isoformat()}


@operation(bp, "/invoices/<path:number>/deliveries", "GET", tag="deliveries",
           summary="Deliveries and events of an invoice", query=[ORG_PARAM],
           responses={200: ("Every delivery of the invoice's messages (sends, reminders, "
                            "receipts, resends) and the invoice's event trail, oldest first.", {
                                "type": "object", "required": ["deliveries", "events"],
                                "properties": {
                                    "deliveries": {"type": "array", "items": DELIVERY_SCHEMA},
                                    "events": {"type": "array", "items": {
                                        "type": "object", "properties": {
                                            "at": {"type": "string"},
                                            "kind": {"type": "string"},
                                            "about": {"type": "string"},
                                            "actor": {"type": "string"},
                                            "payload": {"type": "object"}}}}}})})
def invoice_deliveries(number: str):
    """Where Herald tried to reach the customer with this invoice, and what happened."""
    session = db_session()
    invoice = invoice_by_number(session, number, query().get("organisation_id"))
    exact, prefixes = message_subjects(invoice)
    rows = session.execute(
        sa.select(Delivery, Message.message_type).join(Message, Message.id == Delivery.message_id)
        .where(sa.or_(Message.subject_key.in_(exact),
                      *(Message.subject_key.startswith(p, autoescape=True) for p in prefixes)))
        .order_by(Delivery.id)).all()
    events = [{"at": entry.event.at.isoformat(), "kind": entry.event.kind,
               "about": entry.about, "actor": entry.event.actor,
               "payload": entry.event.payload} for entry in invoice_trail(session, invoice)]
    return answer({"deliveries": [delivery_json(d, t) for d, t in rows], "events": events})


@operation(bp, "/invoices/<path:number>/resend", "POST", tag="deliveries", scope="support",
           summary="Resend an invoice", query=[ORG_PARAM],
           body={"type": "object", "additionalProperties": False, "required": ["reason"],
                 "properties": {
                     "address_id": {"type": "integer", "minimum": 1,
                                    "description": "one of the customer's verified addresses "
                                                   "(see addresses in the 422 answer)"},
                     "channel": {"enum": [c.value for c in ChannelName],
                                 "description": "the channel: its first verified working "
                                                "address is used; portal puts it in the "
                                                "customer's portal inbox"},
                     "reason": {"type": "string", "minLength": 1, "maxLength": 300,
                                "description": "why, in a few words (logged)"},
                 }},
           responses={202: ("Sent now as a new message; the delivery follows its course.", {
               "type": "object", "required": ["delivery"],
               "properties": {"delivery": DELIVERY_SCHEMA}})})
def resend(number: str):
    """Send the issued invoice again now, with a fresh "review & pay" link, to a verified
    address of the customer (address_id) or to a channel (its first verified working
    address). Give address_id or channel."""
    data = body()
    session = db_session()
    invoice = invoice_by_number(session, number, query().get("organisation_id"))
    actor = current_caller().actor
    target = _target(session, invoice, data)
    config = settings()
    try:
        delivery = resend_document(session, invoice.customer, invoice, target,
                                   reason=data["reason"].strip(), actor=actor,
                                   public_url=config.public_url,
                                   link_days=config.pay_link_days_after_due)
    except LookupError_ as exc:
        field = "number" if "document" in str(exc) else "address_id"
        raise ApiError(422, "invalid_value", f"{exc}.", field) from None
    return answer({"delivery": delivery_json(delivery, invoice.kind.value)}, 202)


def _target(session, invoice, data) -> str:
    if "address_id" in data:
        return str(data["address_id"])
    channel = data.get("channel")
    if channel is None:
        raise ApiError(422, "missing_field", "Give address_id (a verified address of the "
                       "customer) or channel.", "address_id")
    if channel == ChannelName.PORTAL.value:
        return channel
    recipient = sync_customer(session, invoice.customer, actor=current_caller().actor)
    session.flush()
    session.expire(recipient, ["addresses"])
    targets = [a for a in resend_targets(list(recipient.addresses)) if a.channel.value == channel]
    if not targets:
        raise ApiError(422, "invalid_value", f"The customer has no verified, working {channel} "
                       "address; choose another channel or portal.", "channel")
    return str(targets[0].id)
