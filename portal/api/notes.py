"""/api/v1 notes: what a call centre or CRM wants remembered about a customer or an invoice.

A note is a short summary (card numbers and IBANs masked before storage) with
references to where the conversation lives. A suppressed note is hidden from
support reads: only keys that may write notes (customers:write) see it.
"""

from __future__ import annotations

import sqlalchemy as sa

from distribution.events import record_event
from portal.api import bp
from portal.api.auth import current_caller
from portal.api.common import answer, customer_by_id, not_found
from portal.api.errors import ApiError
from portal.api.spec import COMPONENTS, body, operation
from portal.db import db_session
from portal.masking import mask_payment_details
from portal.models import ApiNote, Invoice

URL = {"type": "string", "maxLength": 500, "pattern": "^https://",
       "description": "an https:// address"}
REF = {"type": "string", "minLength": 1, "maxLength": 200}
LINKS_SCHEMA = {"type": "object", "additionalProperties": False, "properties": {
    "transcript_url": URL, "recording_url": URL, "call_id": REF, "ticket_id": REF,
    "crm_url": URL}}
NOTE_SCHEMA = {
    "type": "object", "required": ["id", "customer_id", "summary", "links", "suppressed"],
    "properties": {
        "id": {"type": "integer"}, "customer_id": {"type": "integer"},
        "invoice_number": {"type": ["string", "null"]},
        "summary": {"type": "string", "description": "card numbers and IBANs masked"},
        "links": LINKS_SCHEMA, "suppressed": {"type": "boolean"},
        "created_by": {"type": "string"}, "created_at": {"type": "string"}},
}
COMPONENTS["Note"] = NOTE_SCHEMA


def note_json(note: ApiNote, invoice_number: str | None) -> dict:
    """A note as the API shows it."""
    return {"id": note.id, "customer_id": note.customer_id, "invoice_number": invoice_number,
            "summary": note.summary, "links": note.links, "suppressed": note.suppressed,
            "created_by": note.created_by, "created_at": note.created_at.isoformat()}


@operation(bp, "/customers/<int:customer_id>/notes", "POST", tag="notes",
           scope="customers:write", summary="Write a note on a customer or one of its invoices",
           body={"type": "object", "additionalProperties": False, "required": ["summary"],
                 "properties": {
                     "summary": {"type": "string", "minLength": 1, "maxLength": 2000},
                     "invoice_number": {"type": "string", "minLength": 1, "maxLength": 64,
                                        "description": "one of this customer's invoices"},
                     "links": LINKS_SCHEMA,
                     "suppressed": {"type": "boolean", "default": False,
                                    "description": "hide it from support reads"}}},
           responses={201: ("The note as stored.", {"$ref": "#/components/schemas/Note"})})
def add_note(customer_id: int):
    """A short operational summary with links to the transcript, recording, call ID, ticket
    or CRM record. Card numbers and IBANs in the text are masked before storage."""
    data = body()
    session = db_session()
    customer = customer_by_id(session, customer_id)
    invoice = None
    if "invoice_number" in data:
        invoice = session.scalars(sa.select(Invoice).where(
            Invoice.customer_id == customer.id,
            Invoice.number == data["invoice_number"])).first()
        if invoice is None:
            raise ApiError(422, "invalid_value", f"invoice_number {data['invoice_number']} is "
                           "not an invoice of this customer.", "invoice_number")
    actor = current_caller().actor
    links = {k: mask_payment_details(v) for k, v in (data.get("links") or {}).items()}
    note = ApiNote(customer_id=customer.id, invoice_id=invoice.id if invoice else None,
                   summary=mask_payment_details(data["summary"].strip()), links=links,
                   suppressed=bool(data.get("suppressed", False)), created_by=actor)
    session.add(note)
    session.flush()
    record_event(session, "customer", str(customer.id), "note.added",
                 {"note_id": note.id, "invoice": invoice.number if invoice else None,
                  "suppressed": note.suppressed, "links": sorted(links)}, actor=actor)
    return answer(note_json(note, invoice.number if invoice else None), 201)


@operation(bp, "/customers/<int:customer_id>/notes", "GET", tag="notes",
           summary="Read the notes on a customer",
           responses={200: ("Notes, newest first; suppressed ones only for keys with "
                            "customers:write.", {
                                "type": "object", "required": ["data"],
                                "properties": {"data": {"type": "array", "items": {
                                    "$ref": "#/components/schemas/Note"}}}})})
def list_notes(customer_id: int):
    """The customer's notes. A suppressed note is hidden unless the key may write notes."""
    session = db_session()
    customer = customer_by_id(session, customer_id)
    stmt = sa.select(ApiNote, Invoice.number).outerjoin(
        Invoice, Invoice.id == ApiNote.invoice_id).where(ApiNote.customer_id == customer.id)
    if "customers:write" not in current_caller().scopes:
        stmt = stmt.where(ApiNote.suppressed.is_(False))
    rows = session.execute(stmt.order_by(ApiNote.id.desc()).limit(200)).all()
    return answer({"data": [note_json(note, number) for note, number in rows]})


@operation(bp, "/notes/<int:note_id>", "PATCH", tag="notes", scope="customers:write",
           summary="Suppress or unsuppress a note",
           body={"type": "object", "additionalProperties": False, "required": ["suppressed"],
                 "properties": {"suppressed": {"type": "boolean"}}},
           responses={200: ("The note after the change.",
                            {"$ref": "#/components/schemas/Note"})})
def update_note(note_id: int):
    """Hide a note from support reads (or show it again)."""
    session = db_session()
    note = session.get(ApiNote, note_id)
    if note is None:
        raise not_found(f"note with id {note_id}", "note_id")
    wanted = body()["suppressed"]
    if note.suppressed != wanted:
        note.suppressed = wanted
        record_event(session, "customer", str(note.customer_id),
                     "note.suppressed" if wanted else "note.unsuppressed",
                     {"note_id": note.id}, actor=current_caller().actor)
    number = session.scalar(sa.select(Invoice.number).where(Invoice.id == note.invoice_id)) \
        if note.invoice_id else None
    return answer(note_json(note, number))
