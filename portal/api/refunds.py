"""/api/v1/refund-requests: a caller asks for a refund or a credit; finance decides.

Requests up to REFUND_AUTO_APPROVE_LIMIT (in the seller's currency) are approved
when made; the others wait on the ops console's Approvals page. See
:mod:`portal.refunds` for what approving does.
"""

from __future__ import annotations

import sqlalchemy as sa

from portal.api import bp
from portal.api.auth import current_caller
from portal.api.common import answer, decode_cursor, encode_cursor, invoice_by_number, money
from portal.api.common import settings as herald_settings
from portal.api.errors import ApiError
from portal.api.spec import COMPONENTS, Param, body, operation, query
from portal.db import db_session
from portal.models.refunds import RefundKind, RefundRequest, RefundStatus
from portal.refunds import RefundError, create_request, parse_amount

URL = {"type": "string", "maxLength": 500, "pattern": "^https://",
       "description": "an https:// address"}
REF = {"type": "string", "minLength": 1, "maxLength": 200}
CONTEXT_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "description": "Where the request comes from, for the approver and the audit trail.",
    "properties": {"call_id": REF, "agent": REF, "crm_url": URL, "ticket_id": REF}}
NULLABLE = {"type": ["string", "null"]}
REFUND_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["id", "kind", "status", "invoice_number", "customer_id", "amount", "currency",
                 "reason", "context", "auto_approved", "requested_by", "created_at"],
    "properties": {
        "id": {"type": "integer"}, "kind": {"enum": [k.value for k in RefundKind]},
        "status": {"enum": [s.value for s in RefundStatus]},
        "invoice_number": {"type": "string"}, "customer_id": {"type": "integer"},
        "amount": {"type": "string"}, "currency": {"type": "string"},
        "reason": {"type": "string",
                   "description": "card numbers, IBANs and tax IDs masked"},
        "context": CONTEXT_SCHEMA,
        "auto_approved": {"type": "boolean",
                          "description": "approved when made: at or under the limit"},
        "requested_by": {"type": "string"}, "created_at": {"type": "string"},
        "decided_by": NULLABLE, "decided_at": NULLABLE, "decision_note": NULLABLE,
        "refund_payment_id": {"type": ["integer", "null"],
                              "description": "the refund payment an approved refund recorded"},
        "credit_note_to_issue": {
            "type": ["object", "null"],
            "description": "for an approved credit: the credit note the billing system "
                           "must issue (and import) against the invoice",
            "properties": {"preceding_invoice_number": {"type": "string"},
                           "amount": {"type": "string"}, "currency": {"type": "string"}}},
    },
}
COMPONENTS["RefundRequest"] = REFUND_REQUEST_SCHEMA


def refund_request_json(request: RefundRequest) -> dict:
    """A refund or credit request as the API shows it."""
    approved_credit = request.kind is RefundKind.CREDIT and \
        request.status is RefundStatus.APPROVED
    return {
        "id": request.id, "kind": request.kind.value, "status": request.status.value,
        "invoice_number": request.invoice.number, "customer_id": request.customer_id,
        "amount": money(request.amount), "currency": request.currency,
        "reason": request.reason, "context": request.context or {},
        "auto_approved": request.auto_approved, "requested_by": request.requested_by,
        "created_at": request.created_at.isoformat(),
        "decided_by": request.decided_by,
        "decided_at": request.decided_at.isoformat() if request.decided_at else None,
        "decision_note": request.decision_note, "refund_payment_id": request.payment_id,
        "credit_note_to_issue": {"preceding_invoice_number": request.invoice.number,
                                 "amount": money(request.amount),
                                 "currency": request.currency} if approved_credit else None,
    }


@operation(bp, "/refund-requests", "POST", tag="refunds", scope="support",
           summary="Request a refund or a credit on an invoice",
           body={"type": "object", "additionalProperties": False,
                 "required": ["invoice_number", "amount", "reason"],
                 "properties": {
                     "kind": {"enum": [k.value for k in RefundKind], "default": "refund",
                              "description": "refund: money back; credit: a credit note"},
                     "invoice_number": {"type": "string", "minLength": 1, "maxLength": 64},
                     "organisation_id": {"type": "integer", "minimum": 1},
                     "amount": {"type": "string", "pattern": r"^\d{1,16}(\.\d{1,6})?$",
                                "description": "an amount above 0 as a decimal string with no "
                                               "more decimals than the currency has, e.g. "
                                               "'25.00' (numbers are refused: floats lose "
                                               "cents)"},
                     "currency": {"type": "string", "pattern": "^[A-Z]{3}$",
                                  "description": "ISO 4217 code; must be the invoice's"},
                     "reason": {"type": "string", "minLength": 1, "maxLength": 2000,
                                "description": "what the customer said; card numbers, IBANs "
                                               "and tax IDs are masked before storage"},
                     "context": CONTEXT_SCHEMA}},
           responses={201: ("Recorded: approved at once (at or under the limit) or pending "
                            "for a finance approver.",
                            {"$ref": "#/components/schemas/RefundRequest"})})
def create_refund_request():
    """Ask for money back (refund) or a credit note (credit) on an issued invoice. The amount
    may not exceed what was paid and not yet refunded (refund) or what of the invoice is not
    yet credited or refunded (credit), less requests of the same kind still pending. At or
    under the automatic approval limit the request is approved at once (a refund is then
    recorded as a refund payment); above it, it waits for a finance approver. Send an
    Idempotency-Key (the call ID fits): a retried request is not recorded twice."""
    data = body()
    session = db_session()
    invoice = invoice_by_number(session, data["invoice_number"], data.get("organisation_id"))
    if data.get("currency", invoice.currency) != invoice.currency:
        raise ApiError(422, "invalid_value", f"currency must be {invoice.currency}, the "
                       f"currency of invoice {invoice.number}.", "currency")
    try:
        amount = parse_amount(data["amount"], invoice.currency)
        request = create_request(
            session, invoice, kind=RefundKind(data.get("kind", "refund")), amount=amount,
            reason=data["reason"], context=data.get("context") or {},
            actor=current_caller().actor,
            auto_approve_limit=herald_settings().refund_auto_approve_limit)
    except RefundError as exc:
        raise ApiError(422, "invalid_value", str(exc), exc.field) from None
    return answer(refund_request_json(request), 201,
                  location=f"/api/v1/refund-requests/{request.id}")


@operation(bp, "/refund-requests", "GET", tag="refunds", summary="List refund and credit requests",
           query=[Param("status", {"enum": [s.value for s in RefundStatus]},
                        "Only requests with this status."),
                  Param("kind", {"enum": [k.value for k in RefundKind]}, "Refunds or credits."),
                  Param("customer_id", {"type": "integer", "minimum": 1},
                        "Only this customer's."),
                  Param("invoice_number", {"type": "string", "minLength": 1, "maxLength": 64},
                        "Only requests on this invoice."),
                  Param("limit", {"type": "integer", "minimum": 1, "maximum": 200},
                        "Page size (default 50)."),
                  Param("cursor", {"type": "string", "maxLength": 64},
                        "next_cursor of the previous page.")],
           responses={200: ("A page of requests, newest first.", {
               "type": "object", "required": ["data", "next_cursor"], "properties": {
                   "data": {"type": "array",
                            "items": {"$ref": "#/components/schemas/RefundRequest"}},
                   "next_cursor": {"type": ["string", "null"]}}})})
def list_refund_requests():
    """Refund and credit requests, newest first, filtered; page with next_cursor."""
    args = query()
    stmt = sa.select(RefundRequest)
    if "status" in args:
        stmt = stmt.where(RefundRequest.status == RefundStatus(args["status"]))
    if "kind" in args:
        stmt = stmt.where(RefundRequest.kind == RefundKind(args["kind"]))
    if "customer_id" in args:
        stmt = stmt.where(RefundRequest.customer_id == args["customer_id"])
    if "invoice_number" in args:
        from portal.models import Invoice

        stmt = stmt.join(Invoice, Invoice.id == RefundRequest.invoice_id).where(
            Invoice.number == args["invoice_number"])
    if "cursor" in args:
        stmt = stmt.where(RefundRequest.id < decode_cursor(args["cursor"]))
    limit = args.get("limit", 50)
    rows = list(db_session().scalars(stmt.order_by(RefundRequest.id.desc()).limit(limit + 1)))
    page, more = rows[:limit], len(rows) > limit
    return answer({"data": [refund_request_json(r) for r in page],
                   "next_cursor": encode_cursor(page[-1].id) if more and page else None})


@operation(bp, "/refund-requests/<int:request_id>", "GET", tag="refunds",
           summary="Get a refund or credit request",
           responses={200: ("The request and, once decided, the decision.",
                            {"$ref": "#/components/schemas/RefundRequest"})})
def get_refund_request(request_id: int):
    """One request: its status, who decided, the note, the refund payment or credit to issue."""
    request = db_session().get(RefundRequest, request_id)
    if request is None:
        raise ApiError(404, "not_found", f"No refund or credit request with id {request_id}; "
                       "check the identifier.", "request_id")
    return answer(refund_request_json(request))


