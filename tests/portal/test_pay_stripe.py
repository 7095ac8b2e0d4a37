"""Paying with Stripe Checkout: the session Stripe is asked for, and its signed webhooks."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa

from distribution.deliveries import Message
from portal.models import InvoiceStatus, Payment, PaymentKind, ProcessedProviderEvent
from portal.pay.links import issue_link, public_id
from portal.payment_providers.stripe_checkout import from_minor_units, to_minor_units
from tests.peers import stripe_api
from tests.peers.stripe_api import SECRET_KEY, WEBHOOK_SECRET, sign
from tests.portal.pay_helpers import bill, configure, csrf_from

stripe_peer = stripe_api.stripe_peer


@pytest.fixture
def billed(session):
    return bill(session)


@pytest.fixture
def stripe_on(app, monkeypatch, stripe_peer):
    configure(app, monkeypatch, stripe_secret_key=SECRET_KEY,
              stripe_webhook_secret=WEBHOOK_SECRET, stripe_api_base=stripe_peer.api_base)
    return stripe_peer


def _visit(client, session, invoice):
    _, token = issue_link(session, invoice, days=30, purpose="operator", actor="test")
    client.get(f"/pay/t/{token}")
    pid = public_id(invoice)
    return pid, client.get(f"/pay/{pid}")


def _deliver(client, event, *, secret=WEBHOOK_SECRET, timestamp=None):
    payload = json.dumps(event).encode()
    return client.post("/pay/webhooks/stripe", data=payload,
                       headers={"Stripe-Signature": sign(payload, secret, timestamp),
                                "Content-Type": "application/json"})


def _payments(session, invoice):
    return session.scalars(sa.select(Payment).where(Payment.invoice_id == invoice.id)
                           .order_by(Payment.id)).all()


def test_minor_units():
    assert to_minor_units(Decimal("120.15"), "EUR") == 12015
    assert to_minor_units(Decimal("500"), "JPY") == 500
    assert from_minor_units(12015, "eur") == Decimal("120.15")
    with pytest.raises(ValueError, match="more decimals"):
        to_minor_units(Decimal("1.005"), "EUR")


def test_stripe_is_offered_only_when_its_key_is_set(client, session, billed, app, monkeypatch):
    _, page = _visit(client, session, billed.inv1)
    assert b"Bank transfer" in page.data and b"Stripe" not in page.data
    configure(app, monkeypatch, stripe_secret_key=SECRET_KEY)
    page = client.get(f"/pay/{public_id(billed.inv1)}")
    assert b"Card or other online payment (Stripe)" in page.data


def test_paying_by_card_creates_a_checkout_session_and_redirects(client, session, billed,
                                                                 stripe_on):
    pid, page = _visit(client, session, billed.inv1)
    response = client.post(f"/pay/{pid}/pay", data={"csrf_token": csrf_from(page.data),
                                                    "provider": "stripe", "amount": "50,00"})
    assert response.status_code == 303
    [request] = stripe_on.requests
    assert request["path"] == "/v1/checkout/sessions"
    assert request["authorization"] == f"Bearer {SECRET_KEY}"
    params = request["params"]
    assert params["mode"] == "payment"
    assert params["client_reference_id"] == f"invoice-{billed.inv1.id}"
    assert params["metadata"]["herald_invoice_id"] == str(billed.inv1.id)
    assert params["payment_intent_data"]["metadata"]["herald_invoice_id"] == \
        str(billed.inv1.id)
    item = params["line_items"][0]
    assert item["price_data"]["unit_amount"] == "5000" and item["price_data"]["currency"] == "eur"
    assert params["success_url"].endswith(f"/pay/{pid}?checkout=done")
    assert params["cancel_url"].endswith(f"/pay/{pid}?checkout=cancelled")
    [checkout] = stripe_on.sessions.values()
    assert response.location == checkout["url"]
    assert _payments(session, billed.inv1) == []  # nothing is paid until Stripe says so


def test_the_amount_is_checked_and_the_field_named(client, session, billed, stripe_on):
    pid, page = _visit(client, session, billed.inv1)
    for amount in ("0", "500", "abc", "1.234"):
        response = client.post(f"/pay/{pid}/pay", data={"csrf_token": csrf_from(page.data),
                                                        "provider": "stripe", "amount": amount})
        assert response.status_code == 422, amount
        assert b"Enter an amount from 0.01 to 120.15" in response.data
    assert stripe_on.requests == []
    no_csrf = client.post(f"/pay/{pid}/pay", data={"provider": "stripe", "amount": "5"})
    assert no_csrf.status_code == 400


def test_stripe_refusing_sends_the_customer_back_with_a_message(client, session, billed,
                                                                stripe_on):
    stripe_on.fail_with = (400, {"error": {"type": "invalid_request_error",
                                           "message": "Your account cannot currently make "
                                                      "live charges."}})
    pid, page = _visit(client, session, billed.inv1)
    response = client.post(f"/pay/{pid}/pay", data={"csrf_token": csrf_from(page.data),
                                                    "provider": "stripe", "amount": "10"},
                           follow_redirects=True)
    assert response.status_code == 200
    assert b"Card payment is not available right now" in response.data
    assert b"live charges" not in response.data


def test_webhook_partial_then_full_payment_with_replay(client, session, billed, stripe_on):
    checkout = stripe_on.create_session({"line_items": [{"quantity": "1", "price_data": {
        "currency": "eur", "unit_amount": "5000"}}],
        "metadata": {"herald_invoice_id": str(billed.inv1.id)}})
    first = stripe_on.completed_event(checkout["id"], payment_intent="pi_first")
    assert _deliver(client, first).status_code == 200
    session.refresh(billed.inv1)
    assert billed.inv1.status is InvoiceStatus.PARTIALLY_PAID
    replay = _deliver(client, first)
    assert replay.status_code == 200 and replay.json["duplicate"] is True
    [payment] = _payments(session, billed.inv1)
    assert payment.amount == Decimal("50.00") and payment.provider == "stripe"
    assert payment.provider_reference == "pi_first"
    # The rest, in a second session: now paid.
    second_session = stripe_on.create_session({"line_items": [{"quantity": "1", "price_data": {
        "currency": "eur", "unit_amount": "7015"}}],
        "metadata": {"herald_invoice_id": str(billed.inv1.id)}})
    assert _deliver(client, stripe_on.completed_event(
        second_session["id"], payment_intent="pi_second")).status_code == 200
    session.refresh(billed.inv1)
    assert billed.inv1.status is InvoiceStatus.PAID
    assert [p.amount for p in _payments(session, billed.inv1)] == [Decimal("50.00"),
                                                                   Decimal("70.15")]
    # Each payment got a receipt, in the customer's language, with a fresh link.
    receipts = session.scalars(sa.select(Message).where(Message.message_type == "receipt")
                               .order_by(Message.id)).all()
    assert [m.parameters["amount"] for m in receipts] == ["€50.00", "€70.15"]
    assert all("/pay/t/" in m.link for m in receipts)
    events = session.scalars(sa.select(ProcessedProviderEvent)).all()
    assert len(events) == 2 and events[0].outcome.startswith("payment of 50.00 EUR")
    # The pay page no longer offers to pay.
    _, page = _visit(client, session, billed.inv1)
    assert b"This invoice is paid" in page.data and b"Continue to payment" not in page.data


def test_a_bad_signature_records_nothing(client, session, billed, stripe_on):
    checkout = stripe_on.create_session({"line_items": [{"quantity": "1", "price_data": {
        "currency": "eur", "unit_amount": "12015"}}],
        "metadata": {"herald_invoice_id": str(billed.inv1.id)}})
    event = stripe_on.completed_event(checkout["id"])
    assert _deliver(client, event, secret="whsec_someone_else").status_code == 400
    payload = json.dumps(event).encode()
    unsigned = client.post("/pay/webhooks/stripe", data=payload,
                           headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 400
    tampered = client.post("/pay/webhooks/stripe", data=payload.replace(b"12015", b"99999"),
                           headers={"Stripe-Signature": sign(payload)})
    assert tampered.status_code == 400
    assert _payments(session, billed.inv1) == []
    assert session.scalars(sa.select(ProcessedProviderEvent)).all() == []


def test_an_old_timestamp_is_refused_as_a_replay(client, session, billed, stripe_on):
    checkout = stripe_on.create_session({"line_items": [{"quantity": "1", "price_data": {
        "currency": "eur", "unit_amount": "12015"}}],
        "metadata": {"herald_invoice_id": str(billed.inv1.id)}})
    event = stripe_on.completed_event(checkout["id"])
    response = _deliver(client, event, timestamp=int(time.time()) - 600)
    assert response.status_code == 400
    assert _payments(session, billed.inv1) == []


def test_refunds_are_reflected_once(client, session, billed, stripe_on):
    checkout = stripe_on.create_session({"line_items": [{"quantity": "1", "price_data": {
        "currency": "eur", "unit_amount": "12015"}}],
        "metadata": {"herald_invoice_id": str(billed.inv1.id)}})
    _deliver(client, stripe_on.completed_event(checkout["id"], payment_intent="pi_full"))
    session.refresh(billed.inv1)
    assert billed.inv1.status is InvoiceStatus.PAID
    partial = stripe_on.refunded_event("pi_full", amount=12015, amount_refunded=2015)
    assert _deliver(client, partial).status_code == 200
    assert _deliver(client, partial).json["duplicate"] is True
    session.refresh(billed.inv1)
    assert billed.inv1.status is InvoiceStatus.PARTIALLY_PAID
    # Stripe sends the cumulative amount: the next refund adds only the difference.
    more = stripe_on.refunded_event("pi_full", amount=12015, amount_refunded=12015)
    assert _deliver(client, more).status_code == 200
    refunds = [p for p in _payments(session, billed.inv1) if p.kind is PaymentKind.REFUND]
    assert [r.amount for r in refunds] == [Decimal("20.15"), Decimal("100.00")]
    session.refresh(billed.inv1)
    assert billed.inv1.status is InvoiceStatus.ISSUED
    # A refund of a charge Herald never recorded is acknowledged and ignored.
    stray = _deliver(client, stripe_on.refunded_event("pi_unknown", amount=100,
                                                      amount_refunded=100))
    assert stray.status_code == 200 and stray.json["outcome"].startswith("ignored")


def test_the_webhook_is_off_without_stripe(client, billed):
    payload = b'{"id": "evt_1"}'
    response = client.post("/pay/webhooks/stripe", data=payload,
                           headers={"Stripe-Signature": sign(payload)})
    assert response.status_code == 404
