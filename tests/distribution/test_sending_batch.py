"""Sending a batch: one claim, one record of the sent ones, failures each on their own.

The batch path keeps the single send's guarantees: only released deliveries are
claimed, each step has its event, two workers never both send one delivery, and
the dispatcher enqueues batches only after its commit.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from distribution.channels.base import ChannelError, ChannelName, ErrorKind, OutgoingMessage
from distribution.deliveries import Delivery, DeliveryState
from distribution.dispatcher import tick
from distribution.documents import DatabaseStore
from distribution.events import events_for, verify_chain
from distribution.runs import WaveOptions, create_run, start_wave
from distribution.sending import Sender, SendingPolicy
from distribution.sqltypes import utcnow
from distribution.waves import TokenBucket
from tests.distribution.conftest import deliveries_of, make_recipient, set_state, spec
from tests.distribution.test_sending import FakeChannel

EMAIL = ChannelName.EMAIL


def released_batch(make_session, count: int) -> list[int]:
    """``count`` released email deliveries, one per recipient."""
    with make_session() as session, session.begin():
        keys = [f"b{n}" for n in range(count)]
        for key in keys:
            make_recipient(session, key, email=f"{key}@example.com")
        create_run(session, name="run", message_type="invoice", specs=[spec(k) for k in keys],
                   selection={}, created_by="ops", options=WaveOptions())
        ids = list(session.scalars(sa.select(Delivery.id).where(Delivery.channel == EMAIL)
                                   .order_by(Delivery.id)))
        for delivery_id in ids:
            set_state(session, delivery_id, DeliveryState.RELEASED,
                      lease_until=utcnow() + timedelta(minutes=5))
    return ids


def kinds(make_session, delivery_id: int) -> list[str]:
    with make_session() as session:
        return [e.kind for e in events_for(session, "delivery", str(delivery_id))]


def test_a_batch_is_claimed_sent_and_recorded_with_an_event_per_step(own_db):
    ids = released_batch(own_db, 5)
    channel = FakeChannel(EMAIL)

    states = Sender(own_db, {EMAIL: channel}, DatabaseStore()).send_batch(ids)

    assert states == dict.fromkeys(ids, DeliveryState.SENT)
    assert sorted(m.delivery_id for m in channel.sent) == ids
    with own_db() as session:
        for delivery in deliveries_of(session, channel=EMAIL):
            assert delivery.state is DeliveryState.SENT
            assert delivery.attempts == 1 and delivery.lease_until is None
            assert delivery.provider_message_id == f"fake-{delivery.idempotency_key}"
            sent = events_for(session, "delivery", str(delivery.id))[-1]
            assert sent.payload["provider_message_id"] == delivery.provider_message_id
        assert verify_chain(session) is None
    for delivery_id in ids:
        assert kinds(own_db, delivery_id)[-2:] == ["delivery.sending", "delivery.sent"]


def test_only_released_deliveries_of_a_batch_are_sent(own_db):
    ids = released_batch(own_db, 4)
    with own_db() as session, session.begin():
        set_state(session, ids[1], DeliveryState.CANCELLED)
        set_state(session, ids[2], DeliveryState.SENDING)  # another worker has it
    channel = FakeChannel(EMAIL)

    states = Sender(own_db, {EMAIL: channel}, DatabaseStore()).send_batch(ids)

    assert states == {ids[0]: DeliveryState.SENT, ids[1]: None, ids[2]: None,
                      ids[3]: DeliveryState.SENT}
    assert sorted(m.delivery_id for m in channel.sent) == [ids[0], ids[3]]
    assert "delivery.sending" not in kinds(own_db, ids[1])


def test_failures_in_a_batch_are_recorded_each_and_the_rest_is_sent(own_db):
    ids = released_batch(own_db, 3)

    class Picky(FakeChannel):
        def send(self, message: OutgoingMessage):
            if message.delivery_id == ids[0]:
                raise ChannelError(ErrorKind.RETRYABLE, "421 try later")
            if message.delivery_id == ids[1]:
                raise ChannelError(ErrorKind.PERMANENT, "554 rejected")
            return super().send(message)

    states = Sender(own_db, {EMAIL: Picky(EMAIL)}, DatabaseStore()).send_batch(ids)

    assert states == {ids[0]: DeliveryState.PENDING, ids[1]: DeliveryState.FAILED,
                      ids[2]: DeliveryState.SENT}
    assert kinds(own_db, ids[0])[-1] == "delivery.retry_scheduled"
    assert kinds(own_db, ids[1])[-1] == "delivery.failed"


def test_two_workers_with_overlapping_batches_send_each_delivery_once(own_db):
    ids = released_batch(own_db, 10)
    channel = FakeChannel(EMAIL, delay=0.01)
    sender = Sender(own_db, {EMAIL: channel}, DatabaseStore())
    results: list[dict] = []
    barrier = threading.Barrier(2)

    def worker(batch: list[int]) -> None:
        barrier.wait()
        results.append(sender.send_batch(batch))

    threads = [threading.Thread(target=worker, args=(batch,)) for batch in (ids, ids[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(m.delivery_id for m in channel.sent) == ids
    for delivery_id in ids:
        outcomes = [result[delivery_id] for result in results]
        assert sorted(outcomes, key=str) == [None, DeliveryState.SENT]
        assert kinds(own_db, delivery_id).count("delivery.sent") == 1


def test_a_slow_batch_renews_leases_and_leaves_what_the_reconciler_took(own_db):
    ids = released_batch(own_db, 3)

    def reconciler_takes_the_last(message: OutgoingMessage) -> None:
        if message.delivery_id == ids[0]:
            with own_db() as session, session.begin():
                set_state(session, ids[2], DeliveryState.IN_DOUBT, lease_until=None)

    channel = FakeChannel(EMAIL, during=reconciler_takes_the_last, delay=0.05)
    policy = SendingPolicy(record_every=timedelta(seconds=0.01))

    states = Sender(own_db, {EMAIL: channel}, DatabaseStore(), policy).send_batch(ids)

    assert states == {ids[0]: DeliveryState.SENT, ids[1]: DeliveryState.SENT, ids[2]: None}
    assert sorted(m.delivery_id for m in channel.sent) == ids[:2]  # not sent twice
    with own_db() as session:
        assert session.get(Delivery, ids[2]).state is DeliveryState.IN_DOUBT


def test_the_dispatcher_enqueues_batches_after_commit(own_db):
    with own_db() as session, session.begin():
        for n in range(7):
            make_recipient(session, f"d{n}", email=f"d{n}@example.com")
        summary = create_run(session, name="run", message_type="invoice",
                             specs=[spec(f"d{n}") for n in range(7)], selection={},
                             created_by="ops",
                             options=WaveOptions(rate_per_minute=6_000_000, window_start_hour=0,
                                                 window_end_hour=24,
                                                 weekdays=(0, 1, 2, 3, 4, 5, 6)))
        start_wave(session, summary.run.waves[0].id, actor="ops")
        session.flush()
        session.get(TokenBucket, summary.run.waves[0].id).refilled_at = (
            utcnow() - timedelta(seconds=10))
    batches: list[list[int]] = []

    def enqueue_batch(delivery_ids: list[int]) -> None:
        with own_db() as session:  # committed: another connection sees them released
            states = set(session.scalars(sa.select(Delivery.state).where(
                Delivery.id.in_(delivery_ids))))
        assert states == {DeliveryState.RELEASED}
        batches.append(delivery_ids)

    result = tick(own_db, lambda delivery_id: None, enqueue_batch=enqueue_batch, batch_size=3)

    released = sorted(i for ids in result.released.values() for i in ids)
    assert len(released) == 14  # email and the portal inbox, by the organisation's default
    assert [len(batch) for batch in batches] == [3, 3, 3, 3, 2]
    assert sorted(i for batch in batches for i in batch) == released
    sender = Sender(own_db, {EMAIL: FakeChannel(EMAIL), ChannelName.PORTAL: FakeChannel(
        ChannelName.PORTAL)}, DatabaseStore())
    for batch in batches:
        assert set(sender.send_batch(batch).values()) == {DeliveryState.SENT}
    for delivery_id in released:
        assert kinds(own_db, delivery_id)[-3:] == ["delivery.released", "delivery.sending",
                                                   "delivery.sent"]
