"""/api/v1 refund and credit requests (limits, automatic approval, idempotency) and contacts."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from distribution.events import events_for
from distribution.recipients import Address
from distribution.webhook_endpoints import register_endpoint
from distribution.webhook_sender import WebhookSender
from portal.db import get_database
from portal.issuing import invoice_key
from portal.models import Payment, PaymentKind
from portal.models.refunds import RefundRequest
from portal.refunds import RefundError, decide, parse_amount
from tests.peers.webhook_receiver import running_receiver
from tests.portal.api.conftest import assert_error
from tests.portal.pay_helpers import bill, configure

REASON = ("Charged twice, card 4111 1111 1111 1111, send it to BE68 5390 0754 7034; "
          "our VAT number is NL123456789B01")


@pytest.fixture
def billed(session):
    return bill(session)


def _request_events(session, request_id: int):
    """The request's events, on its invoice's subject (where webhooks and timelines read)."""
    request = session.get(RefundRequest, request_id)
    return [e for e in events_for(session, "invoice", invoice_key(request.invoice))
            if e.kind in ("refund.requested", "refund.decided")
            and e.payload["refund_request_id"] == request_id]


def _events(session, request_id: int) -> list[str]:
    return [e.kind for e in _request_events(session, request_id)]


def _pay(api, number: str, amount: str = "120.15", ref: str = "P-1"):
    response = api.post("/payments", {"amount": amount, "invoice_number": number,
                                      "provider_reference": ref})
    assert response.status_code == 201, response.data


def test_a_small_credit_is_approved_at_once_and_its_reason_is_masked(api, billed, session):
    response = api.post("/refund-requests", {
        "kind": "credit", "invoice_number": "INV-1", "amount": "20.00", "reason": REASON,
        "context": {"call_id": "CALL-77", "agent": "Marta", "crm_url": "https://crm.test/c/1"}})
    assert response.status_code == 201, response.data
    answer = response.get_json()
    assert response.headers["Location"] == f"/api/v1/refund-requests/{answer['id']}"
    assert answer["status"] == "approved" and answer["auto_approved"] is True
    assert answer["decided_by"] == "herald:auto-approve"
    assert answer["credit_note_to_issue"] == {"preceding_invoice_number": "INV-1",
                                              "amount": "20.00", "currency": "EUR"}
    assert answer["refund_payment_id"] is None
    assert answer["context"]["call_id"] == "CALL-77" and answer["requested_by"] == "api:crm"
    for secret in ("4111 1111 1111 1111", "BE68 5390 0754 7034", "NL123456789B01"):
        assert secret not in answer["reason"]
    assert "[card number ending 1111]" in answer["reason"]
    assert "[tax ID ending 9B01]" in answer["reason"]
    stored = session.get(RefundRequest, answer["id"])
    assert "4111" not in stored.reason.replace("ending 1111", "")
    assert _events(session, answer["id"]) == ["refund.requested", "refund.decided"]
    requested, decided = _request_events(session, answer["id"])
    assert requested.payload["status"] == "approved"  # known at once: under the limit
    assert requested.payload["context"]["call_id"] == "CALL-77"
    assert requested.payload["invoice_number"] == "INV-1" and requested.actor == "api:crm"
    assert "NL123456789B01" not in str(requested.payload)
    assert decided.payload["decision"] == "approved" and decided.payload["auto"] is True
    assert decided.actor == decided.payload["decided_by"] == "herald:auto-approve"


def test_a_large_refund_waits_for_finance_and_approval_records_the_refund(api, billed,
                                                                          session):
    _pay(api, "INV-2")
    response = api.post("/refund-requests", {"invoice_number": "INV-2", "amount": "80.00",
                                             "reason": "Moved out in October"})
    assert response.status_code == 201, response.data
    answer = response.get_json()
    assert answer["kind"] == "refund" and answer["status"] == "pending"
    assert answer["auto_approved"] is False and answer["decided_by"] is None
    assert _events(session, answer["id"]) == ["refund.requested"]
    assert _request_events(session, answer["id"])[0].payload["status"] == "pending_approval"
    # 120.15 paid, 80.00 already asked back: 40.15 is left to ask for.
    error = assert_error(api.post("/refund-requests", {
        "invoice_number": "INV-2", "amount": "50.00", "reason": "again"}),
        422, "invalid_value", "amount")
    assert "40.15 EUR" in error["message"]
    request = session.get(RefundRequest, answer["id"])
    decide(session, request, approve=True, actor="staff:1:finance_approver:f@example.com",
           note="ok, card 4111111111111111")
    session.flush()
    refund = session.get(Payment, request.payment_id)
    assert refund.kind is PaymentKind.REFUND and refund.amount == Decimal("80.00")
    assert refund.provider_reference == f"refund-request:{request.id}"
    assert request.decision_note == "ok, card [card number ending 1111]"
    got = api.get(f"/refund-requests/{request.id}").get_json()
    assert got["status"] == "approved" and got["refund_payment_id"] == refund.id
    assert api.get("/invoices/INV-2").get_json()["status"] == "partially_paid"
    with pytest.raises(RefundError, match="already approved"):
        decide(session, request, approve=False, actor="someone else")
    # A paid invoice may still be credited, up to what was neither credited nor refunded.
    error = assert_error(api.post("/refund-requests", {
        "kind": "credit", "invoice_number": "INV-2", "amount": "40.16", "reason": "r"}),
        422, "invalid_value", "amount")
    assert "40.15 EUR is left on it not yet credited" in error["message"]
    credit = api.post("/refund-requests", {"kind": "credit", "invoice_number": "INV-2",
                                           "amount": "40.15", "reason": "r"})
    assert credit.status_code == 201 and credit.get_json()["status"] == "approved"
    assert _events(session, request.id) == ["refund.requested", "refund.decided"]


def test_amounts_are_checked_against_what_was_paid_and_the_currency(api, billed):
    base = {"invoice_number": "INV-1", "reason": "r"}
    error = assert_error(api.post("/refund-requests", {**base, "amount": "10.00"}),
                         422, "invalid_value", "amount")
    assert "0.00 EUR is paid on it" in error["message"]
    assert_error(api.post("/refund-requests", {**base, "amount": 10.5}), 422, "invalid_type",
                 "amount")
    error = assert_error(api.post("/refund-requests", {**base, "kind": "credit",
                                                       "amount": "1.001"}),
                         422, "invalid_value", "amount")
    assert "more decimals than EUR allows" in error["message"]
    assert_error(api.post("/refund-requests", {**base, "kind": "credit", "amount": "0.00"}),
                 422, "invalid_value", "amount")
    error = assert_error(api.post("/refund-requests", {**base, "kind": "credit",
                                                       "amount": "500.00"}),
                         422, "invalid_value", "amount")
    assert "120.15 EUR is left on it not yet credited" in error["message"]
    assert_error(api.post("/refund-requests", {**base, "kind": "credit", "amount": "5.00",
                                               "currency": "USD"}),
                 422, "invalid_value", "currency")
    assert_error(api.post("/refund-requests", {**base, "invoice_number": "NOPE",
                                               "amount": "5.00"}), 404, "not_found")
    assert_error(api.post("/refund-requests", {**base, "kind": "cash", "amount": "5.00"}),
                 422, "invalid_value", "kind")


def test_currency_decimals():
    assert parse_amount("1200", "JPY") == Decimal("1200")
    with pytest.raises(RefundError, match="more decimals than JPY allows"):
        parse_amount("12.5", "JPY")
    assert parse_amount("12.5", "EUR") == Decimal("12.5")


def test_a_retried_request_is_recorded_once(api, billed, session):
    body = {"kind": "credit", "invoice_number": "INV-1", "amount": "60.00", "reason": "r"}
    first = api.post("/refund-requests", body, key="CALL-1")
    again = api.post("/refund-requests", body, key="CALL-1")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert session.scalar(sa.select(sa.func.count(RefundRequest.id))) == 1
    assert_error(api.post("/refund-requests", {**body, "amount": "61.00"}, key="CALL-1"),
                 422, "idempotency_key_reused")


def test_limit_setting_list_filters_and_scopes(app, monkeypatch, make_api, api, billed):
    configure(app, monkeypatch, refund_auto_approve_limit=Decimal("0"))
    small = api.post("/refund-requests", {"kind": "credit", "invoice_number": "INV-1",
                                          "amount": "1.00", "reason": "r"}).get_json()
    assert small["status"] == "pending"
    reader = make_api(["read"])
    assert_error(reader.post("/refund-requests", {"kind": "credit", "invoice_number": "INV-1",
                                                  "amount": "1.00", "reason": "r"}), 403)
    listed = reader.get("/refund-requests?status=pending").get_json()
    assert [r["id"] for r in listed["data"]] == [small["id"]]
    assert reader.get("/refund-requests?status=approved").get_json()["data"] == []
    assert [r["id"] for r in reader.get("/refund-requests?invoice_number=INV-1")
            .get_json()["data"]] == [small["id"]]
    assert reader.get("/refund-requests?invoice_number=INV-2").get_json()["data"] == []
    assert reader.get(f"/refund-requests/{small['id']}").get_json() == small
    assert_error(reader.get("/refund-requests/999999"), 404, "not_found", "request_id")


def test_requests_on_credit_notes_are_refused(api, billed, session):
    billed.inv1.kind = type(billed.inv1.kind)("credit_note")
    session.flush()
    assert_error(api.post("/refund-requests", {"kind": "credit", "invoice_number": "INV-1",
                                               "amount": "1.00", "reason": "r"}),
                 422, "invalid_value", "invoice_number")


def test_add_a_contact_logged_with_who_and_why(api, make_api, billed, session):
    path = f"/customers/{billed.alice.id}/contacts"
    response = api.post(path, {"name": "Piet", "email": "piet@example.com",
                               "phone": "+32 470 99 88 77", "primary": True,
                               "reason": "Caller asked, ticket T-9"})
    assert response.status_code == 201, response.data
    contacts = response.get_json()["contacts"]
    assert {"name": "Piet", "email": "piet@example.com", "phone": "+32 470 99 88 77",
            "primary": True} in contacts
    assert sum(c["primary"] for c in contacts) == 1
    assert response.get_json()["email"] == "piet@example.com"
    [event] = [e for e in events_for(session, "customer", str(billed.alice.id))
               if e.kind == "customer.contact_added"]
    assert event.actor == "api:crm" and event.payload["reason"] == "Caller asked, ticket T-9"
    address = session.scalars(sa.select(Address).where(
        Address.value == "piet@example.com")).one()
    assert address.verified_at is not None
    assert_error(api.post(path, {"email": "PIET@example.com", "reason": "again"}), 409,
                 "already_exists", "email")
    assert_error(api.post(path, {"name": "Nobody", "reason": "r"}), 422, "missing_field",
                 "email")
    assert_error(api.post(path, {"email": "not-an-email", "reason": "r"}), 422,
                 "invalid_value", "email")
    phone_only = api.post(path, {"phone": "+31 6 1234 5678", "reason": "new mobile"})
    assert phone_only.status_code == 201
    assert_error(make_api(["read"]).post(path, {"phone": "+31 6 1", "reason": "r"}), 403)
    assert_error(api.post("/customers/999999/contacts", {"phone": "+3212345678",
                                                         "reason": "r"}), 404)


def test_tax_ids_are_masked_in_notes_and_dispute_reasons(api, billed, session):
    note = api.post(f"/customers/{billed.alice.id}/notes",
                    {"summary": "Wants invoices to VAT BE 0123.456.789 from now on"})
    assert note.status_code == 201, note.data
    assert note.get_json()["summary"] == \
        "Wants invoices to VAT [tax ID ending 6789] from now on"
    dispute = api.post("/invoices/INV-1/disputes", {
        "reason": "other", "description": "Wrong buyer: our NIF is ES X1234567L"})
    assert dispute.status_code == 201, dispute.data
    assert dispute.get_json()["description"] == "Wrong buyer: our NIF is [tax ID ending 567L]"


def test_finance_gets_a_signed_webhook_when_approval_is_needed(app, api, billed, session):
    """The issue's 'done when': a refund above the limit reaches finance as a signed webhook."""
    _pay(api, "INV-2")
    with running_receiver() as receiver:
        hook = register_endpoint(session, receiver.url(), ["refund.requested"], actor="test")
        receiver.secret = hook.secret
        session.flush()
        created = api.post("/refund-requests", {
            "invoice_number": "INV-2", "amount": "100.00", "reason": "Closed the account",
            "context": {"call_id": "CALL-5"}}, key="CALL-5").get_json()
        session.flush()
        sender = WebhookSender(get_database(app).sessionmaker)
        sender.fan_out()
        assert sender.run()["succeeded"] == 1
        [received] = receiver.received
    assert received.verdict == "ok"
    event = received.json()
    assert event["type"] == "refund.requested"
    data = event["data"]
    assert data["refund_request_id"] == created["id"] and data["status"] == "pending_approval"
    assert data["invoice_number"] == "INV-2" and data["amount"] == "100.00"
    assert data["context"] == {"call_id": "CALL-5"}
