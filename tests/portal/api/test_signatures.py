"""/api/v1 signature requests: created by an integration, asked in order, no token shown."""

from __future__ import annotations

import sqlalchemy as sa

from distribution.deliveries import Message
from distribution.events import events_for
from portal.models.signatures import SignatureRequest
from portal.recipients_sync import sync_customer
from tests.portal.api.conftest import assert_error
from tests.portal.pay_helpers import bill


def test_an_integration_asks_two_signers_in_order(make_api, session):
    billed = bill(session)
    sync_customer(session, billed.alice, actor="test")
    session.flush()
    api = make_api(["invoices:write", "read"], name="crm")
    body = {"signers": [{"email": "Finance@Example.com", "name": "Fin"},
                        {"email": "ceo@example.com"}],
            "mode": "acknowledge", "consent_text": "I have read this invoice."}
    response = api.post("/invoices/INV-1/signature-requests", body, key="sig-1")
    assert response.status_code == 201, response.data
    created = response.get_json()
    assert [(s["email"], s["status"]) for s in created["signers"]] == [
        ("finance@example.com", "asked"), ("ceo@example.com", "waiting")]
    assert created["status"] == "pending" and len(created["document_sha256"]) == 64
    assert "token" not in response.get_data(as_text=True)
    # Replayed with the same key: the same answer, nobody asked twice.
    assert api.post("/invoices/INV-1/signature-requests", body, key="sig-1").get_json() \
        == created
    assert session.scalar(sa.select(sa.func.count()).select_from(SignatureRequest)) == 1
    asked = session.scalars(sa.select(Message).where(
        Message.message_type == "signature_request")).all()
    assert len(asked) == 1  # only the first signer, through distribution
    kinds = [e.kind for e in events_for(session, "signature_request", str(created["id"]))]
    assert kinds and all(e.actor == "api:crm" for e in events_for(
        session, "signature_request", str(created["id"])))

    fetched = api.get(f"/signature-requests/{created['id']}")
    assert fetched.get_json() == created
    assert_error(api.get("/signature-requests/999999"), 404, "not_found")


def test_bad_signers_and_scopes_are_refused(make_api, session):
    bill(session)
    session.flush()
    api = make_api(["invoices:write"])
    assert_error(api.post("/invoices/INV-1/signature-requests", {
        "signers": [{"email": "not an address"}], "mode": "sign",
        "consent_text": "I agree."}), 422, "invalid_value", "signer")
    assert_error(api.post("/invoices/INV-404/signature-requests", {
        "signers": [{"email": "a@example.com"}], "mode": "sign",
        "consent_text": "I agree."}), 404, "not_found")
    reader = make_api(["read"])
    assert_error(reader.post("/invoices/INV-1/signature-requests", {
        "signers": [{"email": "a@example.com"}], "mode": "sign",
        "consent_text": "I agree."}), 403)
