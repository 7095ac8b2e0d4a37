"""/api/v1/webhook-endpoints: admin keys register endpoints, read the log and replay;
deliveries reach a real receiver on loopback that checks their signatures."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from distribution.sqltypes import utcnow
from distribution.webhook_models import WebhookDelivery, WebhookEndpoint
from distribution.webhook_sender import WebhookSender
from distribution.webhooks import EVENT_TYPES, publish_event
from portal.api.spec import openapi
from portal.db import get_database
from portal.models import PaymentMethod
from portal.payments import record_payment
from tests.distribution.conftest import Clock
from tests.peers.webhook_receiver import running_receiver
from tests.portal.api.conftest import assert_error
from tests.portal.test_invoices import invoice
from tests.portal.test_metrics import scrape, value


@pytest.fixture
def receiver():
    """A signature-checking webhook receiver on loopback."""
    with running_receiver() as state:
        yield state


@pytest.fixture
def admin(make_api):
    """An Api whose key has the admin scope only."""
    return make_api(["admin"], name="ops automation")


def test_only_admin_keys_manage_endpoints(make_api, admin):
    crm = make_api(["read", "support", "payments:write", "customers:write"], name="crm")
    assert_error(crm.get("/webhook-endpoints"), 403, "missing_scope")
    assert_error(crm.post("/webhook-endpoints", {"url": "https://x.example/h",
                                                 "event_types": ["refund.requested"]}),
                 403, "missing_scope")
    assert admin.get("/webhook-endpoints").get_json() == {"data": []}


def test_register_shows_the_secret_once_and_refuses_bad_input(admin, session):
    response = admin.post("/webhook-endpoints", {
        "url": "https://finance.example/hooks/herald", "format": "slack",
        "event_types": ["refund.requested", "refund.decided"],
        "description": "finance alerts"}, key="create-1")
    assert response.status_code == 201, response.data
    created = response.get_json()
    assert created["secret"].startswith("whsec_") and created["format"] == "slack"
    assert response.headers["Location"] == f"/api/v1/webhook-endpoints/{created['id']}"
    assert "secret" not in admin.get(f"/webhook-endpoints/{created['id']}").get_json()
    assert all("secret" not in e for e in admin.get("/webhook-endpoints").get_json()["data"])
    # The same Idempotency-Key answers the first response: one endpoint, the same secret.
    again = admin.post("/webhook-endpoints", {
        "url": "https://finance.example/hooks/herald", "format": "slack",
        "event_types": ["refund.requested", "refund.decided"],
        "description": "finance alerts"}, key="create-1")
    assert again.get_json()["secret"] == created["secret"]
    assert session.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint)) == 1

    assert_error(admin.post("/webhook-endpoints", {"url": "http://finance.example/h",
                                                   "event_types": ["refund.requested"]}),
                 422, "invalid_value", "url")
    assert_error(admin.post("/webhook-endpoints", {"url": "https://finance.example/h",
                                                   "event_types": ["refund.maybe"]}),
                 422, "invalid_value", "event_types[0]")
    assert_error(admin.post("/webhook-endpoints", {"url": "https://finance.example/h"}),
                 422, "missing_field", "event_types")
    assert_error(admin.get("/webhook-endpoints/999999"), 404, "not_found")


def test_deliveries_are_signed_logged_and_replayed(admin, app, session, billing, receiver):
    created = admin.post("/webhook-endpoints", {
        "url": receiver.url(), "event_types": ["payment.succeeded"]}).get_json()
    receiver.secret = created["secret"]
    receiver.answers = [500]
    record_payment(session, invoice(session, "INV-A2"), amount=Decimal("50.00"),
                   received_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
                   method=PaymentMethod.BANK_TRANSFER, provider="bank",
                   provider_reference="A2-webhook", actor="test")
    session.flush()
    clock = Clock(utcnow())
    sender = WebhookSender(get_database(app).sessionmaker, clock=clock)
    sender.fan_out()
    sender.run()
    clock.advance(60)
    sender.run()
    assert [r.status for r in receiver.received] == [500, 200]
    assert {r.verdict for r in receiver.received} == {"ok"}
    event = receiver.received[-1].json()
    assert event["type"] == "payment.succeeded"
    assert event["data"]["invoice_number"] == "INV-A2" and event["data"]["amount"] == "50.00"

    log = admin.get(f"/webhook-endpoints/{created['id']}/deliveries").get_json()
    [delivery] = log["data"]
    assert delivery["state"] == "succeeded" and delivery["attempts"] == 2
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 200]
    assert log["next_cursor"] is None

    replayed = admin.post(f"/webhook-endpoints/{created['id']}/deliveries/{delivery['id']}"
                          "/replay", key="replay-1")
    assert replayed.status_code == 202 and replayed.get_json()["state"] == "pending"
    clock.advance(1)
    sender.run()
    assert [r.status for r in receiver.received] == [500, 200, 200]
    assert receiver.received[-1].verdict == "ok"
    session.expire_all()
    assert session.get(WebhookDelivery, delivery["id"]).state.value == "succeeded"
    assert_error(admin.post(f"/webhook-endpoints/{created['id']}/deliveries/999999/replay"),
                 404, "not_found")


def test_disable_then_delete_stops_deliveries(admin, app, session, receiver):
    created = admin.post("/webhook-endpoints", {
        "url": receiver.url(), "event_types": ["refund.requested"]}).get_json()
    changed = admin.patch(f"/webhook-endpoints/{created['id']}", {"enabled": False})
    assert changed.status_code == 200 and changed.get_json()["enabled"] is False
    publish_event(session, "refund.requested", "invoice", "1:INV-X",
                  {"amount": "5.00", "currency": "EUR"}, actor="test")
    session.flush()
    sender = WebhookSender(get_database(app).sessionmaker)
    sender.fan_out()
    sender.run()
    assert receiver.received == []
    assert admin.patch(f"/webhook-endpoints/{created['id']}",
                       {"enabled": True}).get_json()["enabled"] is True
    deleted = admin.client.delete(f"/api/v1/webhook-endpoints/{created['id']}",
                                  headers=admin.headers())
    assert deleted.status_code == 204
    publish_event(session, "refund.requested", "invoice", "1:INV-X",
                  {"amount": "6.00", "currency": "EUR"}, actor="test")
    session.flush()
    sender.fan_out()
    sender.run()
    assert receiver.received == []
    assert_error(admin.get(f"/webhook-endpoints/{created['id']}"), 404)


def test_the_openapi_description_documents_endpoints_and_the_webhooks(app):
    spec = openapi()
    assert set(spec["paths"]["/api/v1/webhook-endpoints"]) == {"get", "post"}
    assert spec["paths"]["/api/v1/webhook-endpoints/{endpoint_id}"]["delete"][
        "security"] == [{"apiKey": ["admin"]}]
    assert set(spec["webhooks"]) == set(EVENT_TYPES)
    assert "Herald-Signature" in spec["webhooks"]["refund.requested"]["post"]["description"]


def test_metrics_count_the_outbound_backlog(admin, app, client, session, receiver,
                                            monkeypatch):
    monkeypatch.setitem(app.config, "HERALD", dataclasses.replace(
        app.config["HERALD"], metrics_allow_loopback=True))  # scraped as a local Prometheus
    created = admin.post("/webhook-endpoints", {
        "url": receiver.url(), "event_types": ["refund.requested"]}).get_json()
    receiver.secret = created["secret"]
    before = value(scrape(client), "herald_webhook_backlog", provider="outbound")
    for amount in ("1.00", "2.00"):
        publish_event(session, "refund.requested", "invoice", "1:INV-M",
                      {"amount": amount, "currency": "EUR"}, actor="test")
    session.flush()
    sender = WebhookSender(get_database(app).sessionmaker)
    sender.fan_out()
    assert value(scrape(client), "herald_webhook_backlog", provider="outbound") == before + 2
    assert value(scrape(client), "herald_webhook_backlog", provider="stripe") == 0
    sender.run()
    assert value(scrape(client), "herald_webhook_backlog", provider="outbound") == before
