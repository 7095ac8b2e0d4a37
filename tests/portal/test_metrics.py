"""``/metrics``: parsed by Prometheus's own parser, values match what the test created."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from distribution.deliveries import DeliveryState
from distribution.dispatcher import DispatcherLock
from distribution.events import Event, record_event
from distribution.sqltypes import utcnow
from distribution.worker import record_heartbeat
from portal.db import get_database
from portal.metrics import first_event_id_since
from portal.queue import get_huey, get_tasks
from tests.conftest import on_postgres
from tests.distribution.conftest import deliveries_of, make_recipient, run_for, set_state

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(autouse=True)
def loopback_allowed(app, monkeypatch):
    """These tests scrape as a local Prometheus would, with METRICS_ALLOW_LOOPBACK set."""
    monkeypatch.setitem(app.config, "HERALD", dataclasses.replace(
        app.config["HERALD"], metrics_allow_loopback=True))


def scrape(client, **kwargs) -> Samples:
    """GET /metrics and parse it strictly; every sample by (name, sorted labels)."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_what_exists(client, session):
    before = scrape(client)
    first_id_before = session.scalar(sa.select(sa.func.max(Event.id))) or 0
    for key in ("m1", "m2", "m3", "m4"):
        make_recipient(session, key, email=f"{key}@example.com")
    run_for(session, ["m1", "m2", "m3", "m4"])
    email = deliveries_of(session, channel="email")
    assert len(email) == 4
    set_state(session, email[0].id, DeliveryState.FAILED,
              last_error="SMTP 550 at RCPT: 5.1.1 <m1@example.com>: user unknown")
    set_state(session, email[1].id, DeliveryState.IN_DOUBT)
    set_state(session, email[2].id, DeliveryState.SENT)
    # One release ten minutes ago, one three minutes ago, two now (event time grows with id).
    old = record_event(session, "delivery", str(email[0].id), "delivery.released", {},
                       actor="t")
    session.execute(sa.update(Event).where(Event.id > first_id_before, Event.id <= old.id)
                    .values(at=utcnow() - timedelta(minutes=10)))
    recent = record_event(session, "delivery", str(email[1].id), "delivery.released", {},
                          actor="t")
    session.execute(sa.update(Event).where(Event.id == recent.id)
                    .values(at=utcnow() - timedelta(minutes=3)))
    for delivery in email[2:]:
        record_event(session, "delivery", str(delivery.id), "delivery.released", {}, actor="t")
    record_heartbeat(session, "metrics-test:1")
    session.flush()

    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("herald_deliveries", state="failed", channel="email") == 1
    assert grew("herald_deliveries", state="in_doubt", channel="email") == 1
    assert grew("herald_deliveries", state="sent", channel="email") == 1
    assert grew("herald_deliveries", state="pending", channel="email") == 1
    assert grew("herald_delivery_failures", reason="mailbox_unknown") == 1
    assert grew("herald_delivery_failures", reason="in_doubt") == 1
    assert grew("herald_deliveries_released", window="1m") == 2
    assert grew("herald_deliveries_released", window="5m") == 3
    assert grew("herald_waves", state="draft") + grew("herald_waves", state="running") == 1
    assert value(after, "herald_event_log_events") == session.scalar(
        sa.select(sa.func.count()).select_from(Event))
    assert 0 <= value(after, "herald_worker_heartbeat_age_seconds",
                      worker="metrics-test:1") < 60
    assert value(after, "herald_webhook_backlog", provider="stripe") == 0
    assert value(after, "herald_queue_up") == 1


def test_queue_depth_counts_waiting_tasks(app, client):
    huey = get_huey(app)
    before = value(scrape(client), "herald_queue_depth")
    get_tasks(app).send(999_999_999)  # enqueued only: no worker runs in the test
    try:
        assert value(scrape(client), "herald_queue_depth") == before + 1
    finally:
        huey.dequeue()


@pytest.mark.skipif(not on_postgres(), reason="the dispatcher lock exists on PostgreSQL only")
def test_dispatcher_lock_reported(app, client):
    assert value(scrape(client), "herald_dispatcher_lock_held") == 0
    lock = DispatcherLock(get_database(app).engine)
    assert lock.ensure()
    try:
        assert value(scrape(client), "herald_dispatcher_lock_held") == 1
    finally:
        lock.release()
    assert value(scrape(client), "herald_dispatcher_lock_held") == 0


def test_closed_by_default_even_to_loopback(app, client, monkeypatch):
    # A reverse proxy on the same host makes every client loopback: no token, no scrape.
    monkeypatch.setitem(app.config, "HERALD", dataclasses.replace(
        app.config["HERALD"], metrics_allow_loopback=False))
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 404


def test_loopback_when_allowed_only_direct(client):
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 404
    # Forwarded by a proxy Herald was not told to trust: the client is unknown, refused.
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404
    assert client.get("/metrics", headers={"X-Real-IP": "127.0.0.1"}).status_code == 404
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200


def test_with_token_bearer_required_everywhere(app, client, monkeypatch):
    settings = app.config["HERALD"]
    monkeypatch.setitem(app.config, "HERALD", dataclasses.replace(
        settings, metrics_token="s3cret-scrape-token", metrics_allow_loopback=False))
    assert client.get("/metrics").status_code == 404  # loopback is not enough
    wrong = {"Authorization": "Bearer not-it"}
    assert client.get("/metrics", headers=wrong).status_code == 404
    assert client.get("/metrics", headers={"Authorization": "s3cret-scrape-token"}
                      ).status_code == 404  # the scheme is part of it
    right = {"Authorization": "Bearer s3cret-scrape-token"}
    assert scrape(client, headers=right, environ_base={"REMOTE_ADDR": "10.1.2.3"})


def test_first_event_since_is_found_by_id(session):
    start = (session.scalar(sa.select(sa.func.max(Event.id))) or 0) + 1
    events = [record_event(session, "test", str(n), "tick", {}, actor="t") for n in range(7)]
    now = utcnow()
    for age, event in zip((60, 50, 40, 30, 20, 10, 0), events, strict=True):
        session.execute(sa.update(Event).where(Event.id == event.id)
                        .values(at=now - timedelta(minutes=age)))
    assert first_event_id_since(session, now - timedelta(minutes=25), start=start) \
        == events[4].id
    assert first_event_id_since(session, now - timedelta(hours=2), start=start) == start
    assert first_event_id_since(session, now + timedelta(minutes=1), start=start) \
        == events[-1].id + 1
