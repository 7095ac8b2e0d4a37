"""Sending one delivery: outcomes, retries, dead addresses and fallbacks, exactly-once claims.

Email goes to a real SMTP server (aiosmtpd on 127.0.0.1); the error-class logic
uses a small in-test channel. ``Sender`` commits, so each test has its own database.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from distribution.channels.base import (
    ChannelError,
    ChannelName,
    ErrorKind,
    OutgoingMessage,
    Receipt,
)
from distribution.channels.email import EmailChannel, SmtpSettings
from distribution.deliveries import Delivery, DeliveryState
from distribution.documents import DatabaseStore, DocumentFormat
from distribution.events import events_for, verify_chain
from distribution.preferences import ALL_TYPES, set_preference
from distribution.reconciler import reconcile
from distribution.runs import WaveOptions, create_run
from distribution.sending import Sender, SendingPolicy
from distribution.sqltypes import utcnow
from tests.distribution.conftest import PUSH_SUBSCRIPTION, make_recipient, set_state, spec
from tests.peers import smtp as peers
from tests.peers.smtp import SmtpPeer

smtp_peer = peers.smtp_peer

EMAIL, PUSH, PORTAL = ChannelName.EMAIL, ChannelName.WEB_PUSH, ChannelName.PORTAL
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
UBL = b'<?xml version="1.0"?><Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:' \
      b'Invoice-2"><ID>INV-a</ID></Invoice>'


@dataclass
class FakeChannel:
    """A channel that answers as told and remembers what it was given."""

    name: ChannelName
    errors: list[ChannelError | Exception] = field(default_factory=list)
    delay: float = 0.0
    during: object = None  # called inside send, e.g. to simulate the reconciler
    sent: list[OutgoingMessage] = field(default_factory=list)

    def send(self, message: OutgoingMessage) -> Receipt:
        self.sent.append(message)
        if self.during:
            self.during(message)
        time.sleep(self.delay)
        if self.errors:
            raise self.errors.pop(0)
        return Receipt(provider_message_id=f"fake-{message.idempotency_key}")


def released_delivery(make_session, *, key: str = "a", language: str = "en",
                      invoice_channels=(EMAIL,), global_channels=None, attachments=None,
                      parameters=None, push: str | None = None) -> int:
    """One released delivery (the first of the message) with its PDF and UBL stored."""
    with make_session() as session, session.begin():
        recipient = make_recipient(session, key, language=language, push=push)
        if global_channels:
            set_preference(session, recipient, ALL_TYPES, list(global_channels))
        set_preference(session, recipient, "invoice", list(invoice_channels),
                       email_attachments=attachments)
        store = DatabaseStore()
        pdf = store.put(session, PDF, DocumentFormat.PDF).sha256
        ubl = store.put(session, UBL, DocumentFormat.UBL).sha256
        message = replace(spec(key), pdf_sha256=pdf, ubl_sha256=ubl)
        if parameters is not None:
            message = replace(message, parameters=parameters)
        create_run(session, name="run", message_type="invoice", specs=[message], selection={},
                   created_by="ops", options=WaveOptions())
        delivery = session.scalars(sa.select(Delivery).order_by(Delivery.id)).first()
        set_state(session, delivery.id, DeliveryState.RELEASED,
                  lease_until=utcnow() + timedelta(minutes=5))
        return delivery.id


def load(make_session, delivery_id: int) -> Delivery:
    with make_session() as session:
        delivery = session.get(Delivery, delivery_id)
        delivery.address  # noqa: B018 - loaded before the session closes
        return delivery


def kinds(make_session, delivery_id: int) -> list[str]:
    with make_session() as session:
        return [e.kind for e in events_for(session, "delivery", str(delivery_id))]


def release(make_session, delivery_id: int) -> None:
    with make_session() as session, session.begin():
        set_state(session, delivery_id, DeliveryState.RELEASED)


@pytest.fixture
def email_channel(smtp_peer: SmtpPeer):
    settings = SmtpSettings(host=smtp_peer.host, port=smtp_peer.port,
                            from_address="billing@herald.test",
                            message_id_domain="mail.herald.test", timeout=5)
    with EmailChannel(settings) as channel:
        yield channel


@pytest.mark.parametrize("attachments", [None, ["pdf", "ubl"], ["ubl"], []])
def test_email_is_sent_with_the_chosen_attachments_and_message_id(
        own_db, smtp_peer, email_channel, attachments):
    delivery_id = released_delivery(own_db, attachments=attachments)
    sender = Sender(own_db, {EMAIL: email_channel}, DatabaseStore())

    assert sender.send(delivery_id) is DeliveryState.SENT

    delivery = load(own_db, delivery_id)
    expected_id = f"<{delivery.idempotency_key}@mail.herald.test>"
    assert delivery.state is DeliveryState.SENT
    assert delivery.provider_message_id == expected_id
    assert (delivery.attempts, delivery.lease_until, delivery.last_error) == (1, None, None)
    assert delivery.sent_at is not None
    assert kinds(own_db, delivery_id) == ["delivery.planned", "delivery.sending",
                                          "delivery.sent"]
    (received,) = smtp_peer.messages
    assert received.rcpt_tos == ("ann@example.com",)
    mail = received.parsed()
    assert mail["Message-ID"] == expected_id
    assert mail["Subject"] == "Your invoice INV-a from Testing Telecom"
    body = mail.get_body(("plain",)).get_content()
    assert "https://portal.herald.test/invoices/INV-a" in body
    files = {part.get_filename(): part.get_payload(decode=True)
             for part in mail.iter_attachments()}
    wanted = {"pdf": ("INV-a.pdf", PDF), "ubl": ("INV-a.xml", UBL)}
    assert files == dict(wanted[kind] for kind in (attachments if attachments is not None
                                                   else ["pdf"]))


def test_retryable_error_goes_back_to_pending_then_fails_after_max_attempts(
        own_db, smtp_peer, email_channel):
    delivery_id = released_delivery(own_db)
    sender = Sender(own_db, {EMAIL: email_channel}, DatabaseStore(),
                    SendingPolicy(max_attempts=2))
    smtp_peer.fail_next(451, "4.3.0 try again later", at="DATA", times=2)

    before = utcnow()
    assert sender.send(delivery_id) is DeliveryState.PENDING
    delivery = load(own_db, delivery_id)
    assert delivery.state is DeliveryState.PENDING
    assert delivery.attempts == 1
    assert delivery.lease_until is None
    assert "try again later" in delivery.last_error
    # First backoff 30 s with ±10 % jitter.
    assert before + timedelta(seconds=26) < delivery.next_attempt_at
    assert delivery.next_attempt_at < utcnow() + timedelta(seconds=34)
    assert kinds(own_db, delivery_id)[-1] == "delivery.retry_scheduled"

    release(own_db, delivery_id)
    assert sender.send(delivery_id) is DeliveryState.FAILED
    delivery = load(own_db, delivery_id)
    assert (delivery.state, delivery.attempts) == (DeliveryState.FAILED, 2)
    assert kinds(own_db, delivery_id)[-1] == "delivery.failed"
    assert smtp_peer.messages == []


def test_retry_after_is_respected_and_a_crashing_channel_is_retried(own_db):
    delivery_id = released_delivery(own_db)
    channel = FakeChannel(EMAIL, errors=[
        ChannelError(ErrorKind.RETRYABLE, "429 slow down", retry_after=3600),
        RuntimeError("adapter bug")])
    sender = Sender(own_db, {EMAIL: channel}, DatabaseStore())

    assert sender.send(delivery_id) is DeliveryState.PENDING
    assert load(own_db, delivery_id).next_attempt_at >= utcnow() + timedelta(seconds=3590)

    release(own_db, delivery_id)
    assert sender.send(delivery_id) is DeliveryState.PENDING
    delivery = load(own_db, delivery_id)
    assert delivery.attempts == 2
    assert delivery.last_error == "unexpected RuntimeError in the channel"


@pytest.mark.parametrize(("channels", "reason"), [
    ({EMAIL: FakeChannel(EMAIL, errors=[ChannelError(ErrorKind.PERMANENT, "554 rejected")])},
     "554 rejected"),
    ({}, "the email channel is not configured"),
])
def test_permanent_error_fails(own_db, channels, reason):
    delivery_id = released_delivery(own_db)

    assert Sender(own_db, channels, DatabaseStore()).send(delivery_id) is DeliveryState.FAILED

    delivery = load(own_db, delivery_id)
    assert (delivery.state, delivery.last_error) == (DeliveryState.FAILED, reason)
    with own_db() as session:
        failed = events_for(session, "delivery", str(delivery_id))[-1]
        assert failed.kind == "delivery.failed"
        assert failed.payload["kind"] == "permanent"
        assert failed.payload["reason"] == reason


def test_dead_address_is_pruned_and_the_next_channel_takes_over(
        own_db, smtp_peer, email_channel):
    # Invoices by email; globally email then browser push. The mailbox is gone.
    delivery_id = released_delivery(own_db, language="nl", invoice_channels=(EMAIL,),
                                    global_channels=(EMAIL, PUSH), push=PUSH_SUBSCRIPTION)
    smtp_peer.refuse_rcpt("ann@example.com", "550 5.1.1 no such user here")
    push = FakeChannel(PUSH)
    sender = Sender(own_db, {EMAIL: email_channel, PUSH: push}, DatabaseStore())

    assert sender.send(delivery_id) is DeliveryState.FAILED

    with own_db() as session:
        failed = session.get(Delivery, delivery_id)
        assert failed.state is DeliveryState.FAILED
        assert failed.address.dead_since is not None
        assert "no such user" in failed.address.dead_reason
        recipient_events = events_for(session, "recipient", "a")
        assert recipient_events[-1].kind == "address.dead"
        fallback = session.scalars(sa.select(Delivery).where(
            Delivery.message_id == failed.message_id, Delivery.id != delivery_id)).one()
        assert fallback.channel is PUSH
        assert fallback.state is DeliveryState.PENDING
        assert fallback.wave_id == failed.wave_id
        assert fallback.fallback_for == "email"
        assert "no such user" in fallback.fallback_reason
        assert [e.kind for e in events_for(session, "delivery", str(fallback.id))] == [
            "delivery.fallback_created"]
        assert verify_chain(session) is None

    release(own_db, fallback.id)
    assert sender.send(fallback.id) is DeliveryState.SENT
    (outgoing,) = push.sent
    assert outgoing.text.startswith("Wij konden dit niet via email versturen zoals u vroeg: ")
    assert "no such user" in outgoing.text
    assert "Beste Ann Peeters" in outgoing.text
    assert outgoing.language == "nl"


def test_dead_address_without_another_channel_falls_back_to_the_portal(own_db):
    delivery_id = released_delivery(own_db, language="es", invoice_channels=(EMAIL,))
    dead = FakeChannel(EMAIL, errors=[ChannelError(ErrorKind.ADDRESS_DEAD, "mailbox gone")])
    portal = FakeChannel(PORTAL)
    sender = Sender(own_db, {EMAIL: dead, PORTAL: portal}, DatabaseStore())

    assert sender.send(delivery_id) is DeliveryState.FAILED
    with own_db() as session:
        fallback = session.scalars(sa.select(Delivery).where(
            Delivery.channel == PORTAL)).one()
        assert (fallback.fallback_for, fallback.fallback_reason) == ("email", "mailbox gone")
    release(own_db, fallback.id)
    assert sender.send(fallback.id) is DeliveryState.SENT
    assert portal.sent[0].text.startswith(
        "No pudimos enviarlo por email como nos pidió: mailbox gone.")


def test_a_delivery_that_is_not_released_is_not_sent(own_db):
    delivery_id = released_delivery(own_db)
    with own_db() as session, session.begin():
        set_state(session, delivery_id, DeliveryState.CANCELLED)
    channel = FakeChannel(EMAIL)

    assert Sender(own_db, {EMAIL: channel}, DatabaseStore()).send(delivery_id) is None
    assert channel.sent == []
    assert load(own_db, delivery_id).state is DeliveryState.CANCELLED


def test_two_workers_sending_the_same_delivery_send_it_once(own_db):
    delivery_id = released_delivery(own_db)
    channel = FakeChannel(EMAIL, delay=0.2)
    sender = Sender(own_db, {EMAIL: channel}, DatabaseStore())
    results: list[DeliveryState | None] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        results.append(sender.send(delivery_id))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    assert sorted(results, key=str) == [None, DeliveryState.SENT]
    assert len(channel.sent) == 1
    assert load(own_db, delivery_id).attempts == 1
    assert kinds(own_db, delivery_id).count("delivery.sent") == 1


def test_a_message_that_cannot_be_rendered_fails_instead_of_looping(own_db):
    delivery_id = released_delivery(own_db, parameters={"customer_name": "Ann"})
    channel = FakeChannel(EMAIL)

    assert Sender(own_db, {EMAIL: channel}, DatabaseStore()).send(delivery_id) is (
        DeliveryState.FAILED)

    delivery = load(own_db, delivery_id)
    assert delivery.state is DeliveryState.FAILED
    assert delivery.last_error.startswith("the message cannot be built: UndefinedError")
    assert channel.sent == []


def test_a_slow_send_that_outlived_its_lease_is_still_recorded_as_sent(own_db):
    delivery_id = released_delivery(own_db)

    def reconciler_runs_meanwhile(_message: OutgoingMessage) -> None:
        with own_db() as session, session.begin():
            set_state(session, delivery_id, DeliveryState.SENDING,
                      lease_until=utcnow() - timedelta(seconds=1))
            result = reconcile(session, resend_email_in_doubt=False)
            assert result.in_doubt == 1

    channel = FakeChannel(EMAIL, during=reconciler_runs_meanwhile)

    assert Sender(own_db, {EMAIL: channel}, DatabaseStore()).send(delivery_id) is (
        DeliveryState.SENT)
    assert load(own_db, delivery_id).state is DeliveryState.SENT
    assert kinds(own_db, delivery_id)[-2:] == ["delivery.in_doubt", "delivery.sent"]
