"""/api/v1 payments, deliveries, resend and disputes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, DeliveryState, Message
from distribution.events import Event, events_for
from distribution.recipients import Address
from einvoice.creditor_reference import format_creditor_reference
from portal.issuing import invoice_key
from portal.models import Dispute, InvoiceStatus, Payment
from portal.recipients_sync import sync_customer
from tests.portal.api.conftest import assert_error
from tests.portal.pay_helpers import REFERENCE, bill
from tests.portal.test_invoices import send


@pytest.fixture
def billed(session):
    billed = bill(session)
    sync_customer(session, billed.alice, actor="test")
    session.flush()
    return billed


def payment_events(session, invoice) -> list[Event]:
    return [e for e in events_for(session, "invoice", invoice_key(invoice))
            if e.kind.endswith(".recorded")]


def test_a_payment_matched_by_structured_reference_is_recorded_once(make_api, billed,
                                                                    session):
    api = make_api(["payments:write"], name="psp")
    body = {"amount": "120.15", "reference": format_creditor_reference(REFERENCE),
            "provider_reference": "PSP-1", "received_at": "2026-10-20T09:00:00Z"}
    response = api.post("/payments", body, key="psp-1")
    assert response.status_code == 201, response.data
    answer = response.get_json()
    assert answer["matched"] and answer["invoice_number"] == "INV-1"
    assert answer["invoice_status"] == "paid"
    [event] = payment_events(session, billed.inv1)
    assert event.actor == "api:psp" and event.payload["provider"] == "api"
    assert api.post("/payments", body, key="psp-1").get_json() == answer
    # Retried without the key: the provider reference is already recorded.
    assert_error(api.post("/payments", body), 409, "already_recorded", "provider_reference")
    assert len(payment_events(session, billed.inv1)) == 1


def test_a_refund_by_invoice_number_and_an_unmatched_payment(api, billed, session):
    paid = api.post("/payments", {"amount": "120.15", "invoice_number": "INV-2",
                                  "provider_reference": "P-2"})
    assert paid.get_json()["invoice_status"] == "paid"
    refund = api.post("/payments", {"kind": "refund", "amount": "20.00",
                                    "invoice_number": "INV-2", "provider_reference": "R-2"})
    assert refund.status_code == 201, refund.data
    assert refund.get_json()["kind"] == "refund"
    assert refund.get_json()["invoice_status"] == "partially_paid"
    unmatched = api.post("/payments", {"amount": "5.00", "reference": "RF00 NOTHING",
                                       "provider_reference": "U-1"})
    assert unmatched.status_code == 201
    assert unmatched.get_json()["matched"] is False
    payment = session.get(Payment, unmatched.get_json()["id"])
    assert payment.invoice_id is None
    assert [e.kind for e in events_for(session, "payment", str(payment.id))] == \
        ["payment.unmatched"]
    assert_error(api.post("/payments", {"kind": "refund", "amount": "1.00",
                                        "reference": "RF00 NOTHING", "provider_reference": "R-9"}),
                 422, "missing_field", "invoice_number")


def test_payment_validation_names_the_field(api, billed):
    base = {"amount": "1.00", "invoice_number": "INV-1", "provider_reference": "V"}
    assert_error(api.post("/payments", {**base, "amount": "1.001"}), 422, "invalid_value",
                 "amount")
    assert_error(api.post("/payments", {**base, "amount": "0.00"}), 422, "invalid_value",
                 "amount")
    assert_error(api.post("/payments", {**base, "amount": 1}), 422, "invalid_type", "amount")
    assert_error(api.post("/payments", {**base, "currency": "USD"}), 422, "invalid_value",
                 "currency")
    assert_error(api.post("/payments", {**base, "received_at": "yesterday"}), 422,
                 "invalid_value", "received_at")
    assert_error(api.post("/payments", {**base, "method": "cash"}), 422, "invalid_value",
                 "method")
    assert_error(api.post("/payments", {**base, "invoice_number": "NOPE"}), 404, "not_found")


def test_deliveries_show_state_and_events_of_an_invoice(api, billed, session):
    deliveries = send(session, billed.inv1)
    response = api.get("/invoices/INV-1/deliveries")
    assert response.status_code == 200
    body = response.get_json()
    assert [(d["id"], d["channel"], d["state"]) for d in body["deliveries"]] == \
        [(d.id, d.channel.value, "sent") for d in deliveries]
    assert "email" in {d["channel"] for d in body["deliveries"]}
    kinds = [e["kind"] for e in body["events"]]
    assert "invoice.imported" in kinds and "delivery.sent" in kinds
    assert_error(api.get("/invoices/NOPE/deliveries"), 404)


def test_resend_to_a_verified_address_or_channel(make_api, billed, session):
    api = make_api(["support"], name="call centre")
    address = session.scalars(sa.select(Address).where(Address.value == "c1@example.com")).one()
    assert address.verified_at is not None or address.channel is ChannelName.EMAIL
    response = api.post("/invoices/INV-1/resend",
                        {"channel": "email", "reason": "caller never got it"}, key="call-9")
    assert response.status_code == 202, response.data
    delivery_id = response.get_json()["delivery"]["id"]
    delivery = session.get(Delivery, delivery_id)
    assert delivery.address_id == address.id and delivery.state is DeliveryState.RELEASED
    assert api.post("/invoices/INV-1/resend", {"channel": "email",
                                               "reason": "caller never got it"},
                    key="call-9").get_json()["delivery"]["id"] == delivery_id
    messages = session.scalars(sa.select(Message).where(
        Message.subject_key.startswith(f"resend:{invoice_key(billed.inv1)}:"))).all()
    assert len(messages) == 1
    [logged] = [e for e in events_for(session, "invoice", invoice_key(billed.inv1))
                if e.kind == "invoice.resent_by_support"]
    assert logged.actor == "api:call centre" and logged.payload["reason"] == "caller never got it"
    portal = api.post("/invoices/INV-1/resend", {"channel": "portal", "reason": "inbox"})
    assert portal.get_json()["delivery"]["channel"] == "portal"
    assert_error(api.post("/invoices/INV-1/resend", {"channel": "fcm", "reason": "x"}), 422,
                 "invalid_value", "channel")
    assert_error(api.post("/invoices/INV-1/resend", {"address_id": 999999, "reason": "x"}),
                 422, "invalid_value", "address_id")
    assert_error(api.post("/invoices/INV-1/resend", {"reason": "x"}), 422, "missing_field",
                 "address_id")
    assert_error(api.post("/invoices/INV-1/resend", {"channel": "email"}), 422,
                 "missing_field", "reason")


def test_open_update_and_write_in_a_dispute(make_api, billed, session):
    api = make_api(["support", "read"], name="call centre")
    card = "4111 1111 1111 1111"
    response = api.post("/invoices/INV-1/disputes", {
        "reason": "wrong_amount", "amount": "20.00",
        "description": f"Charged twice on card {card}"}, key="call-1")
    assert response.status_code == 201, response.data
    dispute = response.get_json()
    assert card not in dispute["description"] and "ending 1111" in dispute["description"]
    assert response.headers["Location"] == f"/api/v1/disputes/{dispute['id']}"
    session.refresh(billed.inv1)
    assert billed.inv1.status is InvoiceStatus.DISPUTED
    replay = api.post("/invoices/INV-1/disputes", {
        "reason": "wrong_amount", "amount": "20.00",
        "description": f"Charged twice on card {card}"}, key="call-1")
    assert replay.get_json() == dispute
    assert session.scalar(sa.select(sa.func.count()).select_from(Dispute)) == 1
    error = assert_error(api.post("/invoices/INV-1/disputes", {
        "reason": "other", "description": "again"}), 422, "invalid_value")
    assert "already has an open dispute" in error["message"]
    message = api.post(f"/disputes/{dispute['id']}/messages",
                       {"body": "IBAN BE68 5390 0754 7034 please refund"})
    assert message.status_code == 201
    body = message.get_json()["messages"][-1]["body"]
    assert "5390" not in body and "ending 7034" in body
    assert_error(api.patch(f"/disputes/{dispute['id']}", {"status": "resolved"}), 422,
                 "invalid_value", "resolution")
    resolved = api.patch(f"/disputes/{dispute['id']}", {
        "status": "resolved", "resolution": "rejected", "resolution_text": "Charged once."})
    assert resolved.status_code == 200 and resolved.get_json()["status"] == "resolved"
    session.refresh(billed.inv1)
    assert billed.inv1.status is InvoiceStatus.ISSUED
    kinds = [(e.kind, e.actor) for e in events_for(session, "invoice", invoice_key(billed.inv1))
             if e.kind.startswith("dispute.")]
    assert kinds == [("dispute.opened", "api:call centre"),
                     ("dispute.message_added", "api:call centre"),
                     ("dispute.status_changed", "api:call centre")]
    assert api.get(f"/disputes/{dispute['id']}").get_json()["resolution"] == "rejected"
    assert_error(api.get("/disputes/999999"), 404)
    assert_error(api.patch("/disputes/999999", {"status": "withdrawn"}), 404)
    assert_error(api.post("/invoices/INV-2/disputes", {"reason": "bad", "description": "x"}),
                 422, "invalid_value", "reason")
    assert_error(make_api(["read"]).post("/invoices/INV-2/disputes",
                                         {"reason": "other", "description": "x"}), 403)
    all_payloads = " ".join(str(e.payload) for e in session.scalars(sa.select(Event)))
    assert card not in all_payloads and card.replace(" ", "") not in all_payloads
