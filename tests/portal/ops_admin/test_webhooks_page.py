"""Webhooks in the ops console: register (secret shown once), delivery log, replay, disable,
remove; administrators only. Deliveries go to a real signature-checking receiver."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from distribution.sqltypes import utcnow
from distribution.webhook_models import WebhookDelivery, WebhookEndpoint
from distribution.webhook_sender import WebhookSender
from distribution.webhooks import publish_event
from portal.db import get_database
from portal.models import Role
from tests.distribution.conftest import Clock
from tests.factories import make_user
from tests.peers.webhook_receiver import running_receiver
from tests.portal.auth.helpers import events_of, sign_in
from tests.portal.ops_admin.helpers import make_admin, page_token, sign_in_admin

SECRET_RE = re.compile(r"<code>(whsec_[A-Za-z0-9_-]+)</code>")


@pytest.fixture
def admin(session):
    make_user(session, email="ops@example.com", role=Role.BILLING_OPERATOR)
    return make_admin(session)


@pytest.fixture
def receiver():
    with running_receiver() as state:
        yield state


def _register(client, url, events=("refund.requested",), body_format="herald"):
    token = page_token(client, "/ops/webhooks")
    return client.post("/ops/webhooks", data={
        "csrf_token": token, "hook-url": url, "hook-description": "finance",
        "hook-body_format": body_format, "hook-event_types": list(events)})


def test_register_send_read_the_log_replay_disable_and_remove(client, app, session, admin,
                                                             receiver):
    sign_in_admin(client, admin)
    response = _register(client, receiver.url(), body_format="slack")
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    secret = SECRET_RE.search(response.data.decode()).group(1)
    receiver.secret = secret
    session.expire_all()
    endpoint = session.scalars(sa.select(WebhookEndpoint)).one()
    assert endpoint.format.value == "slack" and endpoint.event_types == ["refund.requested"]
    assert secret not in client.get("/ops/webhooks").data.decode()
    [registered] = events_of(session, "webhook_endpoint.registered", str(endpoint.id))
    assert registered.actor.startswith(f"staff:{admin.id}:admin:")
    assert secret not in str(registered.payload)

    receiver.answers = [500]
    publish_event(session, "refund.requested", "invoice", "1:INV-1",
                  {"amount": "12.00", "currency": "EUR", "status": "pending_approval"},
                  actor="test")
    session.flush()
    clock = Clock(utcnow())
    sender = WebhookSender(get_database(app).sessionmaker, clock=clock)
    sender.fan_out()
    sender.run()
    page = client.get(f"/ops/webhooks/{endpoint.id}").data.decode()
    assert "Waiting to retry" in page and "500" in page and " ms" in page
    assert receiver.received[0].json()["text"].startswith("[Herald] Refund of 12.00 EUR")

    clock.advance(60)
    sender.run()
    session.expire_all()
    delivery = session.scalars(sa.select(WebhookDelivery)).one()
    assert delivery.state.value == "succeeded"
    token = page_token(client, f"/ops/webhooks/{endpoint.id}")
    replayed = client.post(f"/ops/webhooks/{endpoint.id}/deliveries/{delivery.id}/replay",
                           data={"csrf_token": token}, follow_redirects=True)
    assert f"Delivery {delivery.id} is queued" in replayed.data.decode()
    clock.advance(1)
    sender.run()
    assert [r.status for r in receiver.received] == [500, 200, 200]
    assert {r.verdict for r in receiver.received} == {"ok"}
    assert "(replay)" in client.get(f"/ops/webhooks/{endpoint.id}").data.decode()

    disabled = client.post(f"/ops/webhooks/{endpoint.id}/toggle", data={"csrf_token": token},
                           follow_redirects=True)
    assert "nothing more is sent" in disabled.data.decode()
    publish_event(session, "refund.requested", "invoice", "1:INV-2",
                  {"amount": "1.00", "currency": "EUR"}, actor="test")
    session.flush()
    sender.fan_out()
    sender.run()
    assert len(receiver.received) == 3
    removed = client.post(f"/ops/webhooks/{endpoint.id}/remove", data={"csrf_token": token},
                          follow_redirects=True)
    assert "The endpoint is removed" in removed.data.decode()
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint)) == 0


def test_bad_input_is_refused(client, session, admin):
    sign_in_admin(client, admin)
    refused = _register(client, "http://example.com/hook")
    assert refused.status_code == 400 and "https://" in refused.data.decode()
    assert _register(client, "https://example.com/hook", events=()).status_code == 400
    assert _register(client, "https://example.com/hook", events=("nope",)).status_code == 400
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint)) == 0


def test_other_staff_cannot_see_or_change_webhooks(client, session, admin):
    sign_in(client, "ops@example.com")
    assert client.get("/ops/webhooks").status_code == 403
    token = page_token(client, "/security")
    assert client.post("/ops/webhooks", data={
        "csrf_token": token, "hook-url": "https://x.example/h",
        "hook-event_types": ["refund.requested"]}).status_code == 403
    endpoint = WebhookEndpoint(url="https://x.example/h", event_types=["refund.requested"],
                               secret="whsec_x", created_by="test")
    session.add(endpoint)
    session.flush()
    assert client.get(f"/ops/webhooks/{endpoint.id}").status_code == 403
    assert client.post(f"/ops/webhooks/{endpoint.id}/remove",
                       data={"csrf_token": token}).status_code == 403
    session.expire_all()
    assert session.get(WebhookEndpoint, endpoint.id) is not None
