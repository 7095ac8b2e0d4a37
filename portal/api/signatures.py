"""/api/v1 signature requests: ask people, in order, to sign or acknowledge an invoice."""

from __future__ import annotations

from portal.api import bp
from portal.api.auth import current_caller
from portal.api.common import answer, invoice_by_number, not_found
from portal.api.errors import ApiError
from portal.api.spec import COMPONENTS, Param, body, operation, query
from portal.db import db_session
from portal.models.signatures import RequestStatus, SignatureRequest, SignerStatus, SigningMode
from portal.signing.context import SigningContext
from portal.signing.requests import (
    MAX_CONSENT_TEXT,
    MAX_SIGNERS,
    SignerInput,
    SigningError,
    request_invoice_signatures,
)

SIGNATURE_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["id", "title", "mode", "status", "document_sha256", "signers"],
    "properties": {
        "id": {"type": "integer"}, "invoice_number": {"type": ["string", "null"]},
        "title": {"type": "string"}, "mode": {"enum": [m.value for m in SigningMode]},
        "status": {"enum": [s.value for s in RequestStatus]},
        "document_sha256": {"type": "string"},
        "signed_sha256": {"type": ["string", "null"]},
        "created_at": {"type": "string"}, "expires_at": {"type": "string"},
        "signers": {"type": "array", "items": {"type": "object", "properties": {
            "position": {"type": "integer"}, "email": {"type": "string"},
            "status": {"enum": [s.value for s in SignerStatus]},
            "finished_at": {"type": ["string", "null"]}}}},
    },
}
COMPONENTS["SignatureRequest"] = SIGNATURE_REQUEST_SCHEMA


def request_json(request: SignatureRequest) -> dict:
    """A signature request as the API shows it (no link tokens, ever)."""
    return {"id": request.id,
            "invoice_number": request.invoice.number if request.invoice else None,
            "title": request.title, "mode": request.mode.value, "status": request.status.value,
            "document_sha256": request.document_sha256, "signed_sha256": request.signed_sha256,
            "created_at": request.created_at.isoformat(),
            "expires_at": request.expires_at.isoformat(),
            "signers": [{"position": s.position, "email": s.email, "status": s.status.value,
                         "finished_at": s.finished_at.isoformat() if s.finished_at else None}
                        for s in request.signers]}


@operation(bp, "/invoices/<path:number>/signature-requests", "POST", tag="signatures",
           scope="invoices:write", summary="Ask people to sign or acknowledge an invoice",
           query=[Param("organisation_id", {"type": "integer", "minimum": 1},
                        "The seller, when several use the same invoice number.")],
           body={"type": "object", "additionalProperties": False,
                 "required": ["signers", "mode", "consent_text"],
                 "properties": {
                     "signers": {"type": "array", "minItems": 1, "maxItems": MAX_SIGNERS,
                                 "description": "asked in this order, each after the last "
                                                "has signed",
                                 "items": {"type": "object", "additionalProperties": False,
                                           "required": ["email"],
                                           "properties": {
                                               "email": {"type": "string", "maxLength": 254},
                                               "name": {"type": "string",
                                                        "maxLength": 200}}}},
                     "mode": {"enum": [m.value for m in SigningMode]},
                     "consent_text": {"type": "string", "minLength": 1,
                                      "maxLength": MAX_CONSENT_TEXT}}},
           responses={201: ("Created; the first signer is asked through distribution.",
                            {"$ref": "#/components/schemas/SignatureRequest"})})
def create_signature_request(number: str):
    """The invoice's PDF is what gets signed; its SHA-256 is recorded with every signature,
    and the signed PDF gets a certificate page (and a PAdES signature when configured)."""
    data = body()
    session = db_session()
    invoice = invoice_by_number(session, number, query().get("organisation_id"))
    try:
        request = request_invoice_signatures(
            session, invoice,
            [SignerInput(s["email"], s.get("name")) for s in data["signers"]],
            mode=SigningMode(data["mode"]), consent_text=data["consent_text"],
            actor=current_caller().actor, context=SigningContext.from_app())
    except SigningError as exc:
        field = str(exc).split(":", 1)[0] if ":" in str(exc) else "number"
        raise ApiError(422, "invalid_value", str(exc),
                       field if field in ("signer", "title", "consent_text") else "number") \
            from None
    return answer(request_json(request), 201,
                  location=f"/api/v1/signature-requests/{request.id}")


@operation(bp, "/signature-requests/<int:request_id>", "GET", tag="signatures",
           summary="Get a signature request",
           responses={200: ("The request and where each signer stands.",
                            {"$ref": "#/components/schemas/SignatureRequest"})})
def get_signature_request(request_id: int):
    """Who has signed, who is asked now, and the signed document's hash once complete."""
    request = db_session().get(SignatureRequest, request_id)
    if request is None:
        raise not_found(f"signature request with id {request_id}", "request_id")
    return answer(request_json(request))
