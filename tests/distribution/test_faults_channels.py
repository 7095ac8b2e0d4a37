"""Fault tests at the channels' peers: an SMTP relay refusing for a while, a push service
answering 500 and then 410.

Both drive the dispatcher's ``tick`` and a ``Sender`` in the test's thread against
real peers on loopback (aiosmtpd, the Web Push service of ``tests/peers``), on a
database of the test's own, and end with the checks every fault test shares
(:mod:`tests.distribution.fault_support`): nothing lost, nothing sent twice, the
log replays and its hash chain verifies.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from datetime import timedelta

import sqlalchemy as sa

from distribution.channels.base import ChannelName
from distribution.channels.email import EmailChannel
from distribution.channels.email_settings import SmtpSettings
from distribution.channels.webpush import WebPushChannel
from distribution.deliveries import Delivery, DeliveryState
from distribution.dispatcher import tick
from distribution.documents import DatabaseStore
from distribution.events import Event
from distribution.preferences import set_preference
from distribution.recipients import Address
from distribution.runs import start_wave
from distribution.sending import Sender, SendingPolicy
from distribution.vapid import VapidKeys
from tests.distribution.conftest import make_recipient, run_for
from tests.distribution.fault_support import (  # noqa: F401 - the fixtures are used by name
    MAIL_FROM,
    MESSAGE_ID_DOMAIN,
    Outcome,
    all_final,
    check_log,
    check_outcome,
    fault_db_fixture,
    peer_fixture,
    report,
    seed_wave,
)
from tests.peers.webpush_service import (  # noqa: F401 - the fixtures are used by name
    PushService,
    push_service_factory_fixture,
    push_service_fixture,
)

# The relay's refusal lasts this long here; it stands in for two minutes (see below).
REFUSAL_SECONDS = float(os.environ.get("FAULT_SMTP_REFUSAL_SECONDS", "3"))
REAL_REFUSAL = timedelta(minutes=2)


def scaled_policy(window: float) -> SendingPolicy:
    """Herald's own retry policy with every delay scaled so that ``window`` seconds here
    are two minutes in production; the number of attempts is left as it is."""
    production = SendingPolicy()
    factor = window / REAL_REFUSAL.total_seconds()
    return SendingPolicy(max_attempts=production.max_attempts,
                         first_backoff=production.first_backoff * factor,
                         max_backoff=production.max_backoff * factor)


def smtp_settings(peer) -> SmtpSettings:
    return SmtpSettings(host=peer.host, port=peer.port, from_address=MAIL_FROM,
                        message_id_domain=MESSAGE_ID_DOMAIN, timeout=2)


# -- the SMTP relay refusing (4xx) for two minutes ----------------------------------------------
def test_the_smtp_relay_refusing_for_two_minutes_then_accepting(fault_db, peer):
    """The relay answers ``451 4.7.1`` to every recipient for ``REFUSAL_SECONDS`` (3 s unless
    ``FAULT_SMTP_REFUSAL_SECONDS`` says otherwise), then accepts again.

    It stands in for a refusal of two minutes by scaling Herald's production retry
    backoff (``SendingPolicy``: 30 s doubling, 8 attempts) by ``REFUSAL_SECONDS / 120``,
    keeping the number of attempts: a delivery refused here meets the same sequence of
    retries, relative to the window, as it would in production, and none may run out
    of attempts. Set ``FAULT_SMTP_REFUSAL_SECONDS=120`` to sit the full two minutes.
    """
    started = time.monotonic()
    _, make_session = fault_db
    count = 30
    # A burst is two seconds' worth (20 here): the first tick never sends the whole wave.
    seed_wave(make_session, count, rate_per_minute=600)
    policy = scaled_policy(REFUSAL_SECONDS)
    with EmailChannel(smtp_settings(peer)) as channel:
        sender = Sender(make_session, {ChannelName.EMAIL: channel}, DatabaseStore(), policy)
        refusing_since: float | None = None
        healed = False
        deadline = time.monotonic() + REFUSAL_SECONDS * 10 + 30
        while not all_final(make_session, count):
            assert time.monotonic() < deadline, "the wave did not finish after the refusal"
            tick(make_session, sender.send)
            now = time.monotonic()
            if refusing_since is None and len(peer.messages) >= 5:
                peer.fail_always(451, "4.7.1 Try again later", at="RCPT")
                refusing_since = now
            elif not healed and refusing_since is not None \
                    and now - refusing_since > REFUSAL_SECONDS:
                peer.heal()
                healed = True
            time.sleep(0.02)
    assert healed, "the wave ended before the relay accepted again"
    outcome = check_outcome(make_session, peer, count)
    with make_session() as session:
        reasons = session.scalars(sa.select(Event.payload).where(
            Event.kind == "delivery.retry_scheduled")).all()
        attempts = Counter(session.scalars(sa.select(Delivery.attempts)))
    assert reasons and all(p["reason"].startswith("SMTP 451 at RCPT") for p in reasons), reasons
    # The refusal was felt (some needed 3 attempts or more) and nobody ran out of them.
    assert max(attempts) >= 3 and max(attempts) < policy.max_attempts, attempts
    assert outcome.duplicates == 0 and outcome.in_doubt == 0
    report("smtp_refusing", outcome, started, refusal_seconds=REFUSAL_SECONDS,
           retry_events=len(reasons), most_attempts=max(attempts))


def retried(make_session) -> int:
    """Deliveries that met an error and wait to be tried again."""
    with make_session() as session:
        return session.scalar(sa.select(sa.func.count(sa.distinct(Event.subject_key))).where(
            Event.kind == "delivery.retry_scheduled"))


# -- a push service answering 500, then 410 ---------------------------------------------------
def seed_push_wave(make_session, push_service: PushService, count: int) -> int:
    """``count`` recipients whose invoices go by browser push, else by email; one running wave."""
    with make_session() as session, session.begin():
        keys = [f"p{n:03d}" for n in range(count)]
        for key in keys:
            subscription = json.dumps(push_service.subscription(key))
            recipient = make_recipient(session, key, email=f"{key}@example.com",
                                       push=subscription)
            set_preference(session, recipient, "invoice", [ChannelName.WEB_PUSH],
                           email_attachments=[])
            set_preference(session, recipient, "*", [ChannelName.WEB_PUSH, ChannelName.EMAIL],
                           email_attachments=[])
        summary = run_for(session, keys, rate_per_minute=1200, window_start_hour=0,
                          window_end_hour=24, weekdays=tuple(range(7)))
        wave_id = summary.run.waves[0].id
        start_wave(session, wave_id, actor="test")
    return wave_id


def test_a_push_service_answering_500_then_410(fault_db, peer, push_service):
    """The push service answers 500 to everything until every push has been tried once
    (each is retried with backoff); then it is healthy, except that ``gone`` of the
    subscriptions have expired and get 410: those are marked dead and logged, and the
    invoice goes by email instead (the customer's next channel), once. The others
    arrive by push, once."""
    started = time.monotonic()
    _, make_session = fault_db
    count, gone = 10, 4
    seed_push_wave(make_session, push_service, count)
    push_service.fail_next(500, count=10_000)  # the service is failing
    policy = SendingPolicy(first_backoff=timedelta(milliseconds=200),
                           max_backoff=timedelta(seconds=1))
    push = WebPushChannel(VapidKeys.generate(), "mailto:ops@seller.example", timeout=2,
                          allow_http=True)
    with EmailChannel(smtp_settings(peer)) as email, contextlib.closing(push):
        sender = Sender(make_session, {ChannelName.EMAIL: email, ChannelName.WEB_PUSH: push},
                        DatabaseStore(), policy)
        failing = True
        deadline = time.monotonic() + 40
        while not all_final(make_session, count + gone):
            assert time.monotonic() < deadline, "the wave did not finish"
            tick(make_session, sender.send)
            if failing and push_service.requests >= count and retried(make_session) >= count:
                push_service.clear_failures()  # back, but these subscriptions are gone now
                for n in range(gone):
                    push_service.expire(f"p{n:03d}")
                failing = False
            time.sleep(0.02)
        tick(make_session, sender.send)  # nothing left to release: the wave is done
    assert not failing

    deliveries, timelines = check_log(make_session)
    by_channel = Counter((d.channel, d.state) for d in deliveries)
    assert by_channel == {(ChannelName.WEB_PUSH, DeliveryState.SENT): count - gone,
                          (ChannelName.WEB_PUSH, DeliveryState.FAILED): gone,
                          (ChannelName.EMAIL, DeliveryState.SENT): gone}
    assert push_service.rejected == [(410, "push subscription has unsubscribed or expired")
                                     ] * gone
    with make_session() as session:
        dead = session.scalars(sa.select(Address).where(Address.dead_since.is_not(None))).all()
        logged = session.scalars(sa.select(Event.payload).where(
            Event.kind == "address.dead")).all()
    assert {a.channel for a in dead} == {ChannelName.WEB_PUSH} and len(dead) == gone
    # Every subscription still alive received its push, once.
    gone_ids = {json.loads(a.value)["endpoint"].rsplit("/", 1)[1] for a in dead}
    assert Counter(p.subscription_id for p in push_service.received) == {
        f"p{n:03d}": 1 for n in range(count) if f"p{n:03d}" not in gone_ids}
    assert len(logged) == gone and all("410" in p["reason"] for p in logged), logged
    failed = {d.message_id: d for d in deliveries if d.state is DeliveryState.FAILED}
    fallbacks = [d for d in deliveries if d.channel is ChannelName.EMAIL]
    assert {d.message_id for d in fallbacks} == set(failed)  # one fallback per gone push
    for delivery in fallbacks:
        assert delivery.fallback_for == "web_push" and "410" in delivery.fallback_reason
        assert timelines[delivery.id][0][0] == "delivery.fallback_created"
    for delivery in failed.values():  # a 500 first, then the 410
        kinds = [kind for kind, _ in timelines[delivery.id]]
        assert kinds[-1] == "delivery.failed" and "delivery.retry_scheduled" in kinds
    # The fallback emails arrived once each, under their deterministic Message-IDs.
    received = Counter(str(m.parsed()["Message-ID"]) for m in peer.messages)
    assert received == {f"<{d.idempotency_key}@{MESSAGE_ID_DOMAIN}>": 1 for d in fallbacks}
    report("push_500_then_410", Outcome(
        deliveries=len(deliveries), received=len(push_service.received) + len(peer.messages),
        duplicates=0, in_doubt=0, retried=sum(d.attempts > 1 for d in deliveries)),
        started, gone=gone, fallbacks=len(fallbacks))
