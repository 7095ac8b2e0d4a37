"""Outbound webhooks end to end: the event log → deliveries → a real receiver on loopback."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from distribution.deliveries import Delivery, DeliveryState, transition
from distribution.events import record_event
from distribution.runs import WaveOptions, create_run
from distribution.sqltypes import utcnow
from distribution.webhook_endpoints import (
    EndpointError,
    register_endpoint,
    remove_endpoint,
    update_endpoint,
)
from distribution.webhook_models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryState,
    WebhookEndpoint,
    WebhookFormat,
)
from distribution.webhook_sender import WebhookSender, backlog, backoff, replay, sign
from distribution.webhook_tasks import register_webhook_tasks
from distribution.webhooks import EVENT_TYPES, WEBHOOK_TYPES, UnknownEventKind, publish_event
from distribution.worker import make_huey
from tests.distribution.conftest import Clock, make_recipient, spec
from tests.peers.webhook_receiver import running_receiver

REFUND = {"refund_request_id": 7, "amount": "25.00", "currency": "EUR",
          "reason": "double charge", "status": "pending_approval"}


def endpoint(make_session, url: str, types=("refund.requested",), **options) -> WebhookEndpoint:
    with make_session() as session, session.begin():
        return register_endpoint(session, url, list(types), actor="test", **options)


def publish(make_session, kind: str = "refund.requested", payload=None,
            subject=("invoice", "1:INV-1")) -> int:
    with make_session() as session, session.begin():
        return publish_event(session, kind, *subject, payload or REFUND, actor="test").id


@pytest.fixture
def receiver():
    """A signature-checking webhook receiver on loopback."""
    with running_receiver() as state:
        yield state


def deliveries(make_session) -> list[WebhookDelivery]:
    with make_session() as session:
        return list(session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_the_mapping_covers_every_type_the_issue_names():
    assert set(EVENT_TYPES) == {
        "invoice.issued", "invoice.sent", "invoice.delivered", "invoice.viewed",
        "payment.succeeded", "signature.completed", "dispute.opened", "refund.requested",
        "refund.decided", "wave.paused"}
    assert WEBHOOK_TYPES["refund.requested"] == "refund.requested"
    assert WEBHOOK_TYPES["payment.recorded"] == "payment.succeeded"


def test_signed_delivery_reaches_the_receiver_and_a_500_is_retried_with_backoff(
        own_db, receiver):
    hook = endpoint(own_db, receiver.url())
    receiver.secret = hook.secret
    receiver.answers = [500]
    event_id = publish(own_db)
    clock = Clock(utcnow())
    sender = WebhookSender(own_db, clock=clock)

    assert sender.fan_out() == 1
    assert sender.run() == {"succeeded": 0, "retrying": 1, "failed": 0}
    [first] = receiver.received
    assert first.verdict == "ok" and first.status == 500
    [delivery] = deliveries(own_db)
    assert delivery.state is WebhookDeliveryState.PENDING and delivery.last_status == 500
    assert delivery.next_attempt_at == clock.now + timedelta(seconds=30)

    assert sender.run() == {"succeeded": 0, "retrying": 0, "failed": 0}  # not due yet
    clock.advance(31)
    assert sender.run()["succeeded"] == 1
    [_, second] = receiver.received
    assert second.verdict == "ok" and second.status == 200
    body = second.json()
    assert body["id"] == f"evt_{event_id}" and body["type"] == "refund.requested"
    assert body["data"]["amount"] == "25.00" and body["data"]["invoice_number"] == "INV-1"
    assert second.headers["Herald-Event-Type"] == "refund.requested"
    assert second.headers["Herald-Delivery-Id"] == str(delivery.id)
    assert second.headers["Herald-Attempt"] == "2"
    assert second.body == first.body  # the body is frozen; only the timestamp moves
    with own_db() as session:
        attempts = session.scalars(sa.select(WebhookAttempt).order_by(WebhookAttempt.id)).all()
        assert [a.status_code for a in attempts] == [500, 200]
        assert all(a.duration_ms >= 0 for a in attempts)
        assert backlog(session) == 0
        assert session.get(WebhookDelivery, delivery.id).state is WebhookDeliveryState.SUCCEEDED


def test_the_signature_covers_timestamp_and_body_and_a_captured_request_is_refused(
        own_db, receiver):
    hook = endpoint(own_db, receiver.url())
    receiver.secret = hook.secret
    publish(own_db)
    sender = WebhookSender(own_db)
    sender.fan_out()
    sender.run()
    [sent] = receiver.received
    assert sent.verdict == "ok"
    headers = {"Herald-Signature": sent.headers["Herald-Signature"],
               "Content-Type": "application/json"}
    # The same request again (a replay attack) is refused by the receiver...
    again = requests.post(receiver.url(), data=sent.body, headers=headers, timeout=5)
    assert again.json()["verdict"] == "replayed request"
    # ... a changed body or a moved timestamp breaks the signature ...
    t = sent.headers["Herald-Signature"].split(",")[0].removeprefix("t=")
    tampered = requests.post(receiver.url(), data=sent.body.replace(b"25.00", b"99.00"),
                             headers=headers, timeout=5)
    assert tampered.json()["verdict"] == "bad signature"
    moved = sent.headers["Herald-Signature"].replace(f"t={t}", f"t={int(t) + 1}")
    assert requests.post(receiver.url(), data=sent.body, timeout=5, headers={
        **headers, "Herald-Signature": moved}).json()["verdict"] == "bad signature"
    # ... and an old timestamp is outside the receiver's tolerance, even correctly signed.
    old = int(t) - 3600
    assert requests.post(receiver.url(), data=sent.body, timeout=5, headers={
        **headers, "Herald-Signature": sign(hook.secret, old, sent.body)}
    ).json()["verdict"] == "timestamp outside tolerance"


def test_replay_sends_the_same_delivery_again_with_a_fresh_signature(own_db, receiver):
    hook = endpoint(own_db, receiver.url())
    receiver.secret = hook.secret
    publish(own_db)
    clock = Clock(utcnow())
    sender = WebhookSender(own_db, clock=clock)
    sender.fan_out()
    sender.run()
    clock.advance(2)
    with own_db() as session, session.begin():
        delivery = session.scalars(sa.select(WebhookDelivery)).one()
        assert replay(session, delivery, actor="test")
    assert sender.run()["succeeded"] == 1
    first, second = receiver.received
    assert first.verdict == second.verdict == "ok"  # a new timestamp: not a replay attack
    assert first.headers["Herald-Signature"] != second.headers["Herald-Signature"]
    assert first.headers["Herald-Delivery-Id"] == second.headers["Herald-Delivery-Id"]
    with own_db() as session:
        assert [a.replay for a in session.scalars(
            sa.select(WebhookAttempt).order_by(WebhookAttempt.id))] == [False, True]
        kinds = session.scalars(sa.text("SELECT kind FROM events ORDER BY id")).all()
        assert "webhook_delivery.replayed" in kinds


def test_slack_format_posts_a_readable_text(own_db, receiver):
    hook = endpoint(own_db, receiver.url(), body_format=WebhookFormat.SLACK)
    receiver.secret = hook.secret
    publish(own_db, payload={**REFUND, "reason": "charged <twice> & late"})
    sender = WebhookSender(own_db)
    sender.fan_out()
    sender.run()
    [sent] = receiver.received
    assert sent.json() == {"text": "[Herald] Refund of 25.00 EUR requested on invoice INV-1: "
                                   "charged &lt;twice&gt; &amp; late (waiting for a finance "
                                   "approver)"}


def test_disabled_and_removed_endpoints_get_nothing(own_db, receiver):
    kept = endpoint(own_db, receiver.url("/kept"))
    disabled = endpoint(own_db, receiver.url("/disabled"))
    removed = endpoint(own_db, receiver.url("/removed"))
    late = endpoint(own_db, receiver.url("/late"))
    receiver.secrets = {"/kept": kept.secret, "/disabled": disabled.secret,
                                "/removed": removed.secret, "/late": late.secret}
    with own_db() as session, session.begin():
        update_endpoint(session, session.get(WebhookEndpoint, disabled.id), enabled=False,
                        actor="test")
        remove_endpoint(session, session.get(WebhookEndpoint, removed.id), actor="test")
    publish(own_db)
    sender = WebhookSender(own_db)
    # A delivery made for "late", whose endpoint is disabled before it is sent, is cancelled.
    sender.fan_out()
    with own_db() as session, session.begin():
        update_endpoint(session, session.get(WebhookEndpoint, late.id), enabled=False,
                        actor="test")
    sender.run()
    assert [r.path for r in receiver.received] == ["/kept"]
    assert {d.endpoint_id: d.state for d in deliveries(own_db)} == {
        kept.id: WebhookDeliveryState.SUCCEEDED, late.id: WebhookDeliveryState.CANCELLED}
    # Re-enabled, it gets what happens next, not what it missed.
    with own_db() as session, session.begin():
        update_endpoint(session, session.get(WebhookEndpoint, late.id), enabled=True,
                        actor="test")
    publish(own_db, "refund.decided", {**REFUND, "decision": "approved"})
    with own_db() as session, session.begin():
        kept_row = session.get(WebhookEndpoint, kept.id)
        update_endpoint(session, kept_row, event_types=["refund.decided"], actor="test")
        late_row = session.get(WebhookEndpoint, late.id)
        update_endpoint(session, late_row, event_types=["refund.decided"], actor="test")
    sender.fan_out()
    sender.run()
    # (sent side by side: in either order)
    assert sorted(r.path for r in receiver.received) == ["/kept", "/kept", "/late"]


def test_each_event_becomes_one_delivery_per_subscribed_endpoint_only(own_db, receiver):
    before = publish(own_db)  # logged before the endpoint exists: not sent
    refunds = endpoint(own_db, receiver.url("/a"), ["refund.requested"])
    waves = endpoint(own_db, receiver.url("/b"), ["wave.paused", "refund.decided"])
    first = publish(own_db)
    paused = publish(own_db, "wave.paused", {"reason": "contacts above forecast"},
                     subject=("wave", "3"))
    with own_db() as session, session.begin():
        record_event(session, "invoice", "1:INV-1", "invoice.pdf_rendered", {}, actor="test")
    sender = WebhookSender(own_db)
    assert sender.fan_out() == 2
    assert sender.fan_out() == 0  # the cursor moved in the same transaction
    made = {(d.endpoint_id, d.event_id, d.event_type) for d in deliveries(own_db)}
    assert made == {(refunds.id, first, "refund.requested"), (waves.id, paused, "wave.paused")}
    assert before not in {event_id for _, event_id, _ in made}


def test_fan_out_from_two_workers_at_once_makes_each_delivery_once(own_db, receiver):
    endpoint(own_db, receiver.url(), ["refund.requested"])
    for _ in range(30):
        publish(own_db)
    results, errors = [], []

    def work():
        try:
            results.append(WebhookSender(own_db).fan_out())
        except sa.exc.OperationalError as exc:  # SQLite's busy timeout: a lost race, no harm
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 30
    assert len(deliveries(own_db)) == 30


def test_invoice_sent_comes_from_delivery_events_of_invoices_only(own_db, receiver):
    hook = endpoint(own_db, receiver.url(), ["invoice.sent", "invoice.viewed"])
    receiver.secret = hook.secret
    with own_db() as session, session.begin():
        make_recipient(session, "r1")
        create_run(session, name="t", message_type="invoice", selection={}, created_by="t",
                   specs=[spec("r1", subject="invoice:1:INV-9")], options=WaveOptions())
        create_run(session, name="t", message_type="reminder", selection={}, created_by="t",
                   specs=[spec("r1", subject="reminder:1:INV-9:7")], options=WaveOptions())
        for delivery in session.scalars(sa.select(Delivery)):
            transition(session, delivery.id, delivery.state, DeliveryState.SENT,
                       event="delivery.sent", actor="test")
        invoice_channels = sorted(session.scalars(
            sa.select(Delivery.channel).join(Delivery.message).where(
                sa.text("messages.subject_key = 'invoice:1:INV-9'"))))
    sender = WebhookSender(own_db)
    sender.fan_out()
    sender.run()
    sent = [r.json() for r in receiver.received]
    assert invoice_channels and len(sent) == len(invoice_channels)  # no reminder among them
    assert {s["type"] for s in sent} == {"invoice.sent"}
    assert sorted(s["data"]["channel"] for s in sent) == [c.value for c in invoice_channels]
    assert {(s["data"]["invoice_number"], s["data"]["document_kind"]) for s in sent} == {
        ("INV-9", "invoice")}


def test_retries_stop_after_three_days(own_db, receiver):
    hook = endpoint(own_db, receiver.url())
    receiver.secret = hook.secret
    receiver.answers = [503] * 100
    publish(own_db)
    clock = Clock(utcnow())
    sender = WebhookSender(own_db, clock=clock)
    sender.fan_out()
    for _ in range(40):
        sender.run()
        clock.advance(6 * 3600)
    [delivery] = deliveries(own_db)
    assert delivery.state is WebhookDeliveryState.FAILED
    assert 13 <= delivery.attempts <= 22  # 30 s doubling to 6 h, within 3 days
    assert backoff(1) == timedelta(seconds=30) and backoff(30) == timedelta(hours=6)


def test_unreachable_receiver_is_an_attempt_without_status(own_db, receiver):
    endpoint(own_db, "http://127.0.0.1:9/closed")  # the discard port: refused
    publish(own_db)
    sender = WebhookSender(own_db, timeout=2)
    sender.fan_out()
    assert sender.run()["retrying"] == 1
    [delivery] = deliveries(own_db)
    assert delivery.last_status is None and delivery.last_error == "ConnectionError"


def test_publish_and_registration_refuse_what_they_cannot_do(own_db):
    with own_db() as session, session.begin():
        with pytest.raises(UnknownEventKind):
            publish_event(session, "refund.made_up", "invoice", "1:X", {}, actor="t")
        with pytest.raises(EndpointError) as error:
            register_endpoint(session, "http://example.com/hook", ["refund.requested"],
                              actor="t")
        assert error.value.field == "url"
        with pytest.raises(EndpointError) as error:
            register_endpoint(session, "https://example.com/hook", ["nope"], actor="t")
        assert error.value.field == "event_types"
        hook = register_endpoint(session, "https://hooks.example.com/services/T0/B0/XyZ",
                                 ["refund.requested"], actor="t")
        logged = session.execute(sa.text(
            "SELECT payload FROM events WHERE kind = 'webhook_endpoint.registered'")).scalar()
        text = logged if isinstance(logged, str) else json.dumps(logged)
        assert hook.secret not in text and "XyZ" not in text
        assert hook.secret.startswith("whsec_")


def test_the_worker_task_fans_out_and_sends_through_a_real_consumer(own_db, receiver, tmp_path):
    hook = endpoint(own_db, receiver.url())
    receiver.secret = hook.secret
    publish(own_db)
    huey = make_huey(None, tmp_path)
    webhooks_now = register_webhook_tasks(huey, own_db)
    assert any(name.endswith(".webhooks") for name in huey._registry._registry)  # periodic
    consumer = huey.create_consumer(workers=1, worker_type="thread", periodic=False)
    consumer.start()
    try:
        result = webhooks_now()  # what the API and the console queue after a replay commits
        assert result.get(blocking=True, timeout=30) == {
            "made": 1, "succeeded": 1, "retrying": 0, "failed": 0}
    finally:
        consumer.stop(graceful=True)
    assert [r.verdict for r in receiver.received] == ["ok"]
