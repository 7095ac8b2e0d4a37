"""The ops console's failures: grouped by reason, retried, resent elsewhere; roles enforced."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, DeliveryState, transition
from distribution.dispatcher import tick
from distribution.events import events_for
from distribution.operator_actions import (
    SKIP_ADDRESS_DEAD,
    SKIP_NOT_RETRYABLE,
    ActionError,
    resend_on_channel,
    retry_deliveries,
)
from distribution.recipients import Recipient, add_address
from distribution.runs import WaveOptions
from distribution.waves import Wave, WaveState
from portal.db import get_database
from portal.models import Customer, Role
from portal.ops import failure_reasons as reasons
from portal.queue import get_tasks
from portal.runs import RunSelection, create_document_run
from tests.factories import make_user
from tests.portal import test_ops_customers as customer_tests
from tests.portal.pay_helpers import Billed, bill
from tests.portal.test_web import sign_in

herald = customer_tests.herald  # an app with a real SMTP peer, tasks run at once
smtp_peer = customer_tests.smtp_peer
ALWAYS = WaveOptions(window_start_hour=0, window_end_hour=24, weekdays=tuple(range(7)))
MAILBOX_UNKNOWN = "SMTP 550 at RCPT: 5.1.1 <c1@example.com>: user unknown"


@dataclass
class Failed:
    billed: Billed
    wave_id: int
    failed: int  # Alice's email delivery: failed, mailbox unknown
    doubtful: int  # Bob's email delivery: in doubt
    sent: int  # Alice's portal delivery: sent


def _email_delivery(session, customer, channel=ChannelName.EMAIL) -> Delivery:
    return session.scalars(sa.select(Delivery).join(Delivery.message).join(Recipient).where(
        Recipient.recipient_key == f"customer:{customer.id}",
        Delivery.channel == channel)).one()


@pytest.fixture
def failed(session) -> Failed:
    """A run whose one wave is done: one delivery failed, one in doubt, one sent, one cancelled."""
    billed = bill(session)
    summary = create_document_run(session, RunSelection(), ALWAYS, name="November",
                                  public_url="https://portal.example", created_by="test")
    wave = summary.run.waves[0]
    alice_mail = _email_delivery(session, billed.alice)
    bob_mail = _email_delivery(session, billed.bob)
    alice_portal = _email_delivery(session, billed.alice, ChannelName.PORTAL)
    transition(session, alice_mail.id, DeliveryState.PENDING, DeliveryState.FAILED,
               event="delivery.failed", actor="worker", attempts=1, last_error=MAILBOX_UNKNOWN)
    transition(session, bob_mail.id, DeliveryState.PENDING, DeliveryState.IN_DOUBT,
               event="delivery.in_doubt", actor="reconciler", attempts=1)
    transition(session, alice_portal.id, DeliveryState.PENDING, DeliveryState.SENT,
               event="delivery.sent", actor="worker", attempts=1)
    session.execute(sa.update(Delivery).where(Delivery.wave_id == wave.id,
                                              Delivery.state == DeliveryState.PENDING)
                    .values(state=DeliveryState.CANCELLED))  # Bob's portal copy
    wave.state = WaveState.DONE
    make_user(session, email="ops@example.com", role=Role.BILLING_OPERATOR)
    make_user(session, email="agent@example.com", role=Role.SUPPORT_AGENT)
    make_user(session, email="auditor@example.com", role=Role.AUDITOR)
    make_user(session, email="alice@example.com", customer=billed.alice)
    session.flush()
    return Failed(billed, wave.id, alice_mail.id, bob_mail.id, alice_portal.id)


def _token(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return re.search(rb'"X-CSRFToken": "([^"]+)"', page.data).group(1).decode()


def _delivery(session, delivery_id: int) -> Delivery:
    session.expire_all()
    return session.get(Delivery, delivery_id)


@pytest.mark.parametrize(("error", "expected"), [
    (MAILBOX_UNKNOWN, reasons.MAILBOX_UNKNOWN),
    ("SMTP 554 at DATA: message rejected as spam", reasons.SMTP_PERMANENT),
    ("SMTP 451 at RCPT: greylisted, try later", reasons.DEFERRED),
    ("push service answered 410: gone", reasons.PUSH_GONE),
    ("FCM UNREGISTERED: Requested entity was not found.", reasons.FCM_UNREGISTERED),
    ("SMTP server mail:25 unreachable at MAIL: TimeoutError: timed out", reasons.CONNECTION),
    ("the PDF is still being rendered", reasons.NOT_READY),
    ("the message cannot be built: KeyError: 'x'", reasons.NOT_READY),
    ("something odd", reasons.OTHER),
])
def test_errors_fall_into_reason_groups(error, expected):
    assert reasons.reason_class(error) == expected


def test_in_doubt_and_dead_addresses_have_groups_of_their_own():
    assert reasons.reason_class(None, state="in_doubt") == reasons.IN_DOUBT
    assert reasons.reason_class(None, state="pending", address_dead=True) == reasons.ADDRESS_DEAD


def test_failures_are_grouped_by_reason_with_counts_and_links(client, session, failed):
    sign_in(client, "auditor@example.com")
    page = client.get("/ops/failures").get_data(as_text=True)
    assert "Mailbox unknown (SMTP 5xx)" in page and "In doubt: the worker stopped" in page
    assert f'href="/ops/deliveries/{failed.failed}"' in page
    assert f'href="/ops/deliveries/{failed.doubtful}"' in page
    assert f'href="/ops/deliveries/{failed.sent}"' not in page  # sent is no failure
    assert f'href="/ops/customers/{failed.billed.alice.id}"' in page
    assert f'href="/ops/invoices/{failed.billed.inv1.id}/trail"' in page
    assert "5.1.1 &lt;c1@example.com&gt;: user unknown" in page
    # Alice's message got through on the portal; Bob's did not get through at all.
    assert "Portal inbox" in page and "not reached" in page
    # The auditor reads only: no action buttons.
    assert "/retry" not in page and "Retry all" not in page
    only_web_push = client.get("/ops/failures?channel=web_push").get_data(as_text=True)
    assert "Nothing has failed." in only_web_push


def test_a_capped_page_says_how_many_failures_there_are_in_all(client, session, failed,
                                                               monkeypatch):
    from portal.ops import failures as failures_page

    sign_in(client, "auditor@example.com")
    monkeypatch.setattr(failures_page, "SHOWN", 1)  # two failures, one shown
    page = client.get("/ops/failures").get_data(as_text=True)
    assert "Showing the newest 1 of 2 failures" in page
    assert f'href="/ops/deliveries/{failed.doubtful}"' in page  # the newest
    assert f'href="/ops/deliveries/{failed.failed}"' not in page
    monkeypatch.setattr(failures_page, "SHOWN", 2)
    assert "Showing the newest" not in client.get("/ops/failures").get_data(as_text=True)


def test_delivery_page_shows_the_full_timeline(client, session, failed):
    sign_in(client, "agent@example.com")
    page = client.get(f"/ops/deliveries/{failed.failed}").get_data(as_text=True)
    assert "delivery.planned" in page and "delivery.failed" in page
    assert "preference.resolved" in page  # the message's own event
    assert "Mailbox unknown" in page and "Retry this delivery" in page
    assert "Resend on another channel" not in page  # operators only
    missing = session.scalar(sa.select(sa.func.max(Delivery.id))) + 1000
    assert client.get(f"/ops/deliveries/{missing}").status_code == 404


def test_support_agent_retries_one_into_a_new_wave_because_its_wave_is_done(
        client, session, failed):
    sign_in(client, "agent@example.com")
    token = _token(client, f"/ops/deliveries/{failed.failed}")
    response = client.post(f"/ops/deliveries/{failed.failed}/retry",
                           data={"csrf_token": token, "note": "customer fixed the typo"})
    assert response.status_code == 302
    delivery = _delivery(session, failed.failed)
    assert delivery.state is DeliveryState.PENDING and delivery.attempts == 0
    assert delivery.wave_id != failed.wave_id
    wave = session.get(Wave, delivery.wave_id)
    assert wave.state is WaveState.RUNNING and wave.window_end_hour == 24
    assert wave.run_id == session.get(Wave, failed.wave_id).run_id
    [event] = [e for e in events_for(session, "delivery", str(failed.failed))
               if e.kind == "delivery.retry_requested"]
    assert "support_agent:agent@example.com" in event.actor
    assert event.payload["reason"] == "customer fixed the typo"
    assert event.payload["previous_attempts"] == 1
    assert "went into a new wave" in client.get(f"/ops/deliveries/{failed.failed}").get_data(
        as_text=True)


def test_what_was_sent_is_never_retried(client, session, failed):
    result = retry_deliveries(session, [failed.sent], actor="staff:test", reason="again")
    assert result.retried == [] and result.skipped[failed.sent] == SKIP_NOT_RETRYABLE
    assert _delivery(session, failed.sent).state is DeliveryState.SENT
    sign_in(client, "ops@example.com")
    token = _token(client, "/ops/failures")
    client.post(f"/ops/deliveries/{failed.sent}/retry", data={"csrf_token": token})
    assert _delivery(session, failed.sent).state is DeliveryState.SENT
    assert "it was sent or is still on its way" in client.get(
        f"/ops/deliveries/{failed.sent}").get_data(as_text=True)
    assert not [e for e in events_for(session, "delivery", str(failed.sent))
                if e.kind == "delivery.retry_requested"]


def test_a_dead_address_is_not_retried(session, failed):
    delivery = session.get(Delivery, failed.failed)
    from distribution.recipients import mark_dead

    mark_dead(session, delivery.address, MAILBOX_UNKNOWN, actor="worker")
    result = retry_deliveries(session, [failed.failed], actor="staff:test", reason="again")
    assert result.skipped[failed.failed] == SKIP_ADDRESS_DEAD
    assert _delivery(session, failed.failed).state is DeliveryState.FAILED


def test_operator_retries_a_whole_group(client, session, failed):
    sign_in(client, "ops@example.com")
    token = _token(client, "/ops/failures")
    page = client.get("/ops/failures").get_data(as_text=True)
    assert "Retry all 1 in this group" in page
    response = client.post("/ops/failures/retry", data={
        "csrf_token": token, "reason_class": reasons.IN_DOUBT, "note": "SMTP relay is back"})
    assert response.status_code == 302
    assert _delivery(session, failed.doubtful).state is DeliveryState.PENDING
    assert _delivery(session, failed.failed).state is DeliveryState.FAILED  # other group
    [event] = [e for e in events_for(session, "delivery", str(failed.doubtful))
               if e.kind == "delivery.retry_requested"]
    assert "billing_operator:ops@example.com" in event.actor


def test_roles_decide_who_may_act(client, session, failed):
    sign_in(client, "agent@example.com")
    token = _token(client, "/ops/failures")
    assert client.post("/ops/failures/retry", data={
        "csrf_token": token, "reason_class": reasons.IN_DOUBT}).status_code == 403
    assert client.post(f"/ops/deliveries/{failed.failed}/resend", data={
        "csrf_token": token, "channel": "peppol", "reason": "x"}).status_code == 403
    client.post("/sign-out", data={"csrf_token": token})
    sign_in(client, "auditor@example.com")
    token = _token(client, "/ops/failures")
    assert client.post(f"/ops/deliveries/{failed.failed}/retry",
                       data={"csrf_token": token}).status_code == 403
    assert _delivery(session, failed.failed).state is DeliveryState.FAILED
    client.post("/sign-out", data={"csrf_token": token})
    sign_in(client, "alice@example.com")
    assert client.get("/ops/failures").status_code == 403
    assert client.get(f"/ops/deliveries/{failed.failed}").status_code == 403


def test_a_post_without_csrf_token_is_refused(client, session, failed):
    sign_in(client, "ops@example.com")
    assert client.post(f"/ops/deliveries/{failed.failed}/retry").status_code == 400
    assert client.post("/ops/failures/retry",
                       data={"reason_class": reasons.IN_DOUBT}).status_code == 400
    assert _delivery(session, failed.failed).state is DeliveryState.FAILED
    assert _delivery(session, failed.doubtful).state is DeliveryState.IN_DOUBT


def test_operator_resends_on_another_channel(client, session, failed):
    recipient = session.scalars(sa.select(Recipient).where(
        Recipient.recipient_key == f"customer:{failed.billed.alice.id}")).one()
    add_address(session, recipient, ChannelName.PEPPOL, "0208:0987654321", verified=True,
                actor="test")
    session.flush()
    sign_in(client, "ops@example.com")
    page = client.get(f"/ops/deliveries/{failed.failed}").get_data(as_text=True)
    assert '<option value="peppol">Peppol e-invoice</option>' in page
    assert '<option value="portal">' not in page  # the message already went there
    token = _token(client, f"/ops/deliveries/{failed.failed}")
    response = client.post(f"/ops/deliveries/{failed.failed}/resend", data={
        "csrf_token": token, "channel": "peppol", "reason": "mailbox gone, customer on Peppol"})
    assert response.status_code == 302
    session.expire_all()
    new = session.scalars(sa.select(Delivery).where(
        Delivery.message_id == session.get(Delivery, failed.failed).message_id,
        Delivery.channel == ChannelName.PEPPOL)).one()
    assert response.headers["Location"].endswith(f"/ops/deliveries/{new.id}")
    assert new.state is DeliveryState.PENDING and new.fallback_for == "email"
    assert new.address.value == "0208:0987654321"
    assert session.get(Wave, new.wave_id).state is WaveState.RUNNING  # old wave was done
    # The customer's notice carries the delivery error, the operator's note stays in the log.
    assert new.fallback_reason == MAILBOX_UNKNOWN
    [created] = events_for(session, "delivery", str(new.id))[:1]
    assert created.kind == "delivery.fallback_created"
    assert created.payload["reason"] == "mailbox gone, customer on Peppol"
    assert "billing_operator:ops@example.com" in created.actor
    assert "delivery.resent_elsewhere" in [e.kind for e in events_for(
        session, "delivery", str(failed.failed))]
    assert _delivery(session, failed.failed).state is DeliveryState.FAILED


def test_resend_needs_a_working_unused_channel_and_a_reason(session, failed):
    with pytest.raises(ActionError, match="already has delivery"):
        resend_on_channel(session, failed.failed, ChannelName.PORTAL, actor="t", reason="x")
    with pytest.raises(ActionError, match="no working peppol address"):
        resend_on_channel(session, failed.failed, ChannelName.PEPPOL, actor="t", reason="x")
    with pytest.raises(ActionError, match="reason"):
        resend_on_channel(session, failed.failed, ChannelName.PEPPOL, actor="t", reason=" ")


def test_a_retried_failure_of_a_finished_wave_reaches_the_mailbox(herald, smtp_peer):
    database = get_database(herald)
    with database.session_scope() as session:
        summary = create_document_run(session, RunSelection(), ALWAYS, name="November",
                                      public_url="https://portal.example", created_by="test")
        wave = summary.run.waves[0]
        alice = session.scalars(sa.select(Customer).where(Customer.number == "C1")).one()
        delivery_id = _email_delivery(session, alice).id
        transition(session, delivery_id, DeliveryState.PENDING, DeliveryState.FAILED,
                   event="delivery.failed", actor="worker", attempts=8,
                   last_error="SMTP 451 at RCPT: try later")
        session.execute(sa.update(Delivery).where(Delivery.state == DeliveryState.PENDING)
                        .values(state=DeliveryState.CANCELLED))
        wave.state = WaveState.DONE
    client = herald.test_client()
    sign_in(client, "ops@example.com")
    token = _token(client, f"/ops/deliveries/{delivery_id}")
    assert client.post(f"/ops/deliveries/{delivery_id}/retry",
                       data={"csrf_token": token}).status_code == 302
    tasks = get_tasks(herald)
    for _tick in range(50):  # the dispatcher releases it from the new wave at once
        tick(database.sessionmaker, lambda delivery: tasks.send(delivery))
        if smtp_peer.messages:
            break
        time.sleep(0.1)
    [mail] = [m.parsed() for m in smtp_peer.messages]
    assert mail["To"].addresses[0].addr_spec == "c1@example.com" and "INV-1" in mail["Subject"]
    with database.session_scope() as session:
        assert session.get(Delivery, delivery_id).state is DeliveryState.SENT
