"""Retention of outbound webhook deliveries: operational logs, purged after their days.

Finished deliveries (succeeded, failed, cancelled) older than
``RETENTION_WEBHOOK_DELIVERY_DAYS`` go with their attempts; those still pending or
being sent never do, nor those of events about anything under a legal hold.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from distribution.deliveries import Delivery, Message
from distribution.events import events_for, record_event, verify_chain
from distribution.runs import WaveOptions
from distribution.sqltypes import utcnow
from distribution.webhook_models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryState,
    WebhookEndpoint,
)
from portal.config import Settings
from portal.issuing import invoice_key
from portal.lifecycle.holds import place_hold, release_hold
from portal.lifecycle.retention import RetentionPolicy, purge
from portal.runs import RunSelection, create_document_run
from tests.portal.pay_helpers import bill

State = WebhookDeliveryState


def endpoint(session) -> WebhookEndpoint:
    hook = WebhookEndpoint(url="https://hooks.example.test/in", event_types=["*"],
                           secret="s" * 32, created_by="test")
    session.add(hook)
    session.flush()
    return hook


def delivery(session, hook: WebhookEndpoint, state: WebhookDeliveryState, days_ago: int, *,
             subject: tuple[str, str] = ("wave", "1"), attempts: int = 1) -> WebhookDelivery:
    """A delivery of a new event about ``subject``, finished (or made) ``days_ago``."""
    event = record_event(session, *subject, "test.happened", {}, actor="test")
    at = utcnow() - timedelta(days=days_ago)
    row = WebhookDelivery(endpoint_id=hook.id, event_id=event.id, event_type=event.kind,
                          body="{}", state=state, attempts=attempts, created_at=at,
                          series_started_at=at,
                          completed_at=None if state in (State.PENDING, State.SENDING) else at)
    session.add(row)
    session.flush()
    session.add_all([WebhookAttempt(delivery_id=row.id, at=at, status_code=200, duration_ms=5)
                     for _ in range(attempts)])
    session.flush()
    return row


def delivery_ids(session) -> set[int]:
    session.expire_all()
    return set(session.scalars(sa.select(WebhookDelivery.id)))


def attempts_of(session, delivery_id: int) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(WebhookAttempt)
                          .where(WebhookAttempt.delivery_id == delivery_id))


def test_finished_deliveries_go_after_their_days_with_their_attempts(session):
    hook = endpoint(session)
    old = [delivery(session, hook, state, 91, attempts=2).id
           for state in (State.SUCCEEDED, State.FAILED, State.CANCELLED)]
    recent = delivery(session, hook, State.SUCCEEDED, 89)
    # Work still to do is no log, however old: a pending retry, one being sent.
    waiting = [delivery(session, hook, state, 400) for state in (State.PENDING, State.SENDING)]

    dry = purge(session, RetentionPolicy(), dry_run=True)
    assert dry.removed["webhook_deliveries"] == 3 and dry.removed["webhook_attempts"] == 6
    assert len(delivery_ids(session)) == 6

    report = purge(session, RetentionPolicy())
    assert report.removed["webhook_deliveries"] == 3
    assert report.removed["webhook_attempts"] == 6
    assert delivery_ids(session) == {recent.id, *(row.id for row in waiting)}
    assert all(attempts_of(session, delivery_id) == 0 for delivery_id in old)
    assert attempts_of(session, recent.id) == 1
    purged = events_for(session, "lifecycle", "purge")[-1]
    assert purged.payload["removed"]["webhook_deliveries"] == 3
    assert verify_chain(session) is None  # the events the deliveries carried all stay

    assert "webhook_deliveries" not in purge(session, RetentionPolicy()).removed


def test_the_days_are_configurable(session, tmp_path: Path):
    settings = Settings.from_env(tmp_path, {"RETENTION_WEBHOOK_DELIVERY_DAYS": "7"})
    policy = RetentionPolicy.from_settings(settings)
    assert policy.webhook_delivery_days == 7
    assert Settings.from_env(tmp_path, {}).webhook_delivery_days == 90
    hook = endpoint(session)
    week_old = delivery(session, hook, State.SUCCEEDED, 8).id
    fresh = delivery(session, hook, State.SUCCEEDED, 6)
    assert purge(session, policy).removed["webhook_deliveries"] == 1
    assert delivery_ids(session) == {fresh.id}
    assert week_old not in delivery_ids(session)


def test_deliveries_about_held_records_stay_until_the_hold_ends(session):
    billed = bill(session)
    hook = endpoint(session)
    about_invoice = delivery(session, hook, State.SUCCEEDED, 200,
                             subject=("invoice", invoice_key(billed.inv1)))
    about_customer = delivery(session, hook, State.FAILED, 200,
                              subject=("customer", str(billed.bob.id)))
    about_bobs_invoice = delivery(session, hook, State.SUCCEEDED, 200,
                                  subject=("invoice", invoice_key(billed.inv2)))
    unrelated = delivery(session, hook, State.SUCCEEDED, 200).id
    invoice_hold = place_hold(session, invoice=billed.inv1, reason="audit 7", actor="legal")
    customer_hold = place_hold(session, customer=billed.bob, reason="court", actor="legal")

    report = purge(session, RetentionPolicy())
    assert report.removed["webhook_deliveries"] == 1
    assert delivery_ids(session) == {about_invoice.id, about_customer.id, about_bobs_invoice.id}
    assert attempts_of(session, about_invoice.id) == 1
    assert unrelated not in delivery_ids(session)

    release_hold(session, invoice_hold.id, actor="legal")
    release_hold(session, customer_hold.id, actor="legal")
    assert purge(session, RetentionPolicy()).removed["webhook_deliveries"] == 3
    assert delivery_ids(session) == set()


def test_the_purge_command_reports_them(session, runner):
    hook = endpoint(session)
    delivery(session, hook, State.SUCCEEDED, 100, attempts=3)
    session.commit()
    result = runner.invoke(args=["lifecycle", "purge", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would remove 1 webhook_deliveries" in result.output
    assert "would remove 3 webhook_attempts" in result.output
    result = runner.invoke(args=["lifecycle", "purge"])
    assert result.exit_code == 0, result.output
    assert "removed 1 webhook_deliveries" in result.output
    assert delivery_ids(session) == set()


def test_deliveries_about_a_held_invoices_messages_stay(session):
    billed = bill(session)
    create_document_run(session, RunSelection(), WaveOptions(), name="October",
                        public_url="https://portal.example", created_by="test")
    alice_message = session.scalars(sa.select(Message).where(
        Message.subject_key == f"invoice:{invoice_key(billed.inv1)}")).one()
    alice_delivery = session.scalars(sa.select(Delivery.id).where(
        Delivery.message_id == alice_message.id)).first()
    bob_message = session.scalars(sa.select(Message).where(
        Message.subject_key == f"invoice:{invoice_key(billed.inv2)}")).one()
    hook = endpoint(session)
    kept = {delivery(session, hook, State.SUCCEEDED, 100,
                     subject=("delivery", str(alice_delivery))).id,
            delivery(session, hook, State.SUCCEEDED, 100,
                     subject=("message", str(alice_message.id))).id}
    delivery(session, hook, State.SUCCEEDED, 100, subject=("message", str(bob_message.id)))
    place_hold(session, invoice=billed.inv1, reason="audit 8", actor="legal")

    assert purge(session, RetentionPolicy()).removed["webhook_deliveries"] == 1
    assert delivery_ids(session) == kept
