"""/api/v1 disputes: open one on an invoice, move it on, and write in its thread."""

from __future__ import annotations

from decimal import Decimal

from portal.api import bp
from portal.api.auth import current_caller
from portal.api.common import MONEY, answer, invoice_by_number, money, not_found
from portal.api.errors import ApiError
from portal.api.spec import COMPONENTS, Param, body, operation, query
from portal.db import db_session
from portal.disputes.service import DisputeError, add_message, open_dispute, set_status
from portal.models.disputes import (
    Dispute,
    DisputeReason,
    DisputeResolution,
    DisputeStatus,
    MessageAuthor,
)

DISPUTE_SCHEMA = {
    "type": "object", "required": ["id", "invoice_number", "status", "reason", "description"],
    "properties": {
        "id": {"type": "integer"}, "invoice_number": {"type": "string"},
        "customer_id": {"type": "integer"},
        "status": {"enum": [s.value for s in DisputeStatus]},
        "reason": {"enum": [r.value for r in DisputeReason]},
        "description": {"type": "string", "description": "card numbers and IBANs masked"},
        "amount": {"type": ["string", "null"]}, "currency": {"type": "string"},
        "resolution": {"type": ["string", "null"]},
        "resolution_text": {"type": ["string", "null"]},
        "messages": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "integer"}, "author": {"type": "string"},
            "body": {"type": "string"}, "created_at": {"type": "string"}}}},
    },
}
COMPONENTS["Dispute"] = DISPUTE_SCHEMA
TEXT = {"type": "string", "minLength": 1, "maxLength": 2000}


def dispute_json(dispute: Dispute) -> dict:
    """A dispute as the API shows it."""
    return {"id": dispute.id, "invoice_number": dispute.invoice.number,
            "customer_id": dispute.customer_id, "status": dispute.status.value,
            "reason": dispute.reason.value, "description": dispute.description,
            "amount": money(dispute.amount), "currency": dispute.currency,
            "resolution": dispute.resolution.value if dispute.resolution else None,
            "resolution_text": dispute.resolution_text,
            "messages": [{"id": m.id, "author": m.author.value, "body": m.body,
                          "created_at": m.created_at.isoformat()} for m in dispute.messages]}


def _error(exc: DisputeError, default_field: str) -> ApiError:
    return ApiError(422, "invalid_value", str(exc), exc.field or default_field)


def _dispute(dispute_id: int) -> Dispute:
    dispute = db_session().get(Dispute, dispute_id)
    if dispute is None:
        raise not_found(f"dispute with id {dispute_id}", "dispute_id")
    return dispute


@operation(bp, "/invoices/<path:number>/disputes", "POST", tag="disputes", scope="support",
           summary="Open a dispute on an invoice",
           query=[Param("organisation_id", {"type": "integer", "minimum": 1},
                        "The seller, when several use the same invoice number.")],
           body={"type": "object", "additionalProperties": False,
                 "required": ["reason", "description"],
                 "properties": {"reason": {"enum": [r.value for r in DisputeReason]},
                                "description": TEXT, "amount": MONEY}},
           responses={201: ("Opened; the invoice is disputed and its reminders stop.",
                            {"$ref": "#/components/schemas/Dispute"})})
def open_(number: str):
    """Open a dispute on behalf of the customer (the caller told you). Card numbers and IBANs
    in the description are masked before storage. One open dispute per invoice."""
    data = body()
    session = db_session()
    invoice = invoice_by_number(session, number, query().get("organisation_id"))
    try:
        dispute = open_dispute(session, invoice, reason=DisputeReason(data["reason"]),
                               description=data["description"],
                               amount=Decimal(data["amount"]) if "amount" in data else None,
                               actor=current_caller().actor)
    except DisputeError as exc:
        raise _error(exc, "number") from None
    return answer(dispute_json(dispute), 201, location=f"/api/v1/disputes/{dispute.id}")


@operation(bp, "/disputes/<int:dispute_id>", "GET", tag="disputes", summary="Get a dispute",
           responses={200: ("The dispute and its thread.",
                            {"$ref": "#/components/schemas/Dispute"})})
def get_dispute(dispute_id: int):
    """One dispute with its messages."""
    return answer(dispute_json(_dispute(dispute_id)))


@operation(bp, "/disputes/<int:dispute_id>", "PATCH", tag="disputes", scope="support",
           summary="Move a dispute on (review, resolve, withdraw)",
           body={"type": "object", "additionalProperties": False, "required": ["status"],
                 "properties": {
                     "status": {"enum": [s.value for s in DisputeStatus if s.value != "open"]},
                     "resolution": {"enum": [r.value for r in DisputeResolution],
                                    "description": "required when status is resolved"},
                     "resolution_text": {**TEXT, "description": "what the customer reads; "
                                                                "required when resolved"}}},
           responses={200: ("The dispute after the change.",
                            {"$ref": "#/components/schemas/Dispute"})})
def update_dispute(dispute_id: int):
    """under_review, resolved (with resolution accepted or rejected and a text) or withdrawn.
    Rejecting or withdrawing gives the invoice back its status; reminders resume."""
    data = body()
    dispute = _dispute(dispute_id)
    try:
        set_status(db_session(), dispute, DisputeStatus(data["status"]),
                   resolution=DisputeResolution(data["resolution"])
                   if "resolution" in data else None,
                   resolution_text=data.get("resolution_text"), actor=current_caller().actor)
    except DisputeError as exc:
        raise _error(exc, "status") from None
    return answer(dispute_json(dispute))


@operation(bp, "/disputes/<int:dispute_id>/messages", "POST", tag="disputes", scope="support",
           summary="Write in a dispute's thread",
           body={"type": "object", "additionalProperties": False, "required": ["body"],
                 "properties": {"body": TEXT}},
           responses={201: ("Added (as staff); card numbers and IBANs masked.",
                            {"$ref": "#/components/schemas/Dispute"})})
def add_dispute_message(dispute_id: int):
    """A message from your staff to the customer in the dispute's thread."""
    data = body()
    dispute = _dispute(dispute_id)
    try:
        add_message(db_session(), dispute, data["body"], author=MessageAuthor.STAFF,
                    actor=current_caller().actor)
    except DisputeError as exc:
        raise _error(exc, "body") from None
    return answer(dispute_json(dispute), 201)
