"""The reconciler: expired leases back to pending or in doubt, and in-doubt resends per channel."""

from __future__ import annotations

from datetime import timedelta

import pytest

from distribution.channels.base import ChannelName
from distribution.deliveries import DeliveryState
from distribution.events import events_for, verify_chain
from distribution.preferences import set_preference
from distribution.reconciler import reconcile
from distribution.sqltypes import utcnow
from tests.distribution.conftest import (
    PUSH_SUBSCRIPTION,
    deliveries_of,
    make_recipient,
    run_for,
    set_state,
)

ALL_CHANNELS = [ChannelName.EMAIL, ChannelName.WEB_PUSH, ChannelName.FCM, ChannelName.PEPPOL,
                ChannelName.PORTAL]


def five_deliveries(session) -> dict[ChannelName, int]:
    """One message on every channel; delivery ids by channel."""
    recipient = make_recipient(session, push=PUSH_SUBSCRIPTION, fcm="fcm-token-1",
                               peppol="0208:0123456749")
    set_preference(session, recipient, "invoice", ALL_CHANNELS)
    run_for(session, ["r1"])
    return {d.channel: d.id for d in deliveries_of(session)}


def event_kinds(session, delivery_id: int) -> list[str]:
    return [e.kind for e in events_for(session, "delivery", str(delivery_id))]


def test_released_with_an_expired_lease_goes_back_to_pending(own_db):
    with own_db() as session, session.begin():
        ids = five_deliveries(session)
        expired, current = ids[ChannelName.EMAIL], ids[ChannelName.FCM]
        set_state(session, expired, DeliveryState.RELEASED,
                  lease_until=utcnow() - timedelta(seconds=1))
        set_state(session, current, DeliveryState.RELEASED,
                  lease_until=utcnow() + timedelta(minutes=5))

        result = reconcile(session)

        assert (result.requeued, result.in_doubt, result.retried_in_doubt) == (1, 0, 0)
        states = {d.id: (d.state, d.lease_until) for d in deliveries_of(session)}
        assert states[expired] == (DeliveryState.PENDING, None)
        assert states[current][0] is DeliveryState.RELEASED
        assert event_kinds(session, expired) == ["delivery.planned", "delivery.lease_expired"]
        assert event_kinds(session, current) == ["delivery.planned"]
        assert verify_chain(session) is None


@pytest.mark.parametrize("resend_email", [True, False])
def test_sending_with_an_expired_lease_is_in_doubt_then_resent_where_safe(own_db, resend_email):
    with own_db() as session, session.begin():
        ids = five_deliveries(session)
        for delivery_id in ids.values():
            set_state(session, delivery_id, DeliveryState.SENDING, attempts=1,
                      lease_until=utcnow() - timedelta(seconds=1))

        result = reconcile(session, resend_email_in_doubt=resend_email)

        assert result.in_doubt == 5
        assert result.retried_in_doubt == (5 if resend_email else 4)
        states = {d.channel: d.state for d in deliveries_of(session)}
        assert states == {
            ChannelName.EMAIL: DeliveryState.PENDING if resend_email else DeliveryState.IN_DOUBT,
            ChannelName.WEB_PUSH: DeliveryState.PENDING, ChannelName.FCM: DeliveryState.PENDING,
            ChannelName.PEPPOL: DeliveryState.PENDING, ChannelName.PORTAL: DeliveryState.PENDING}
        for channel, delivery_id in ids.items():
            expected = ["delivery.planned", "delivery.in_doubt"]
            if channel is not ChannelName.EMAIL or resend_email:
                expected.append("delivery.retry_in_doubt")
            assert event_kinds(session, delivery_id) == expected, channel
        retry = events_for(session, "delivery", str(ids[ChannelName.FCM]))[-1]
        assert retry.payload["channel"] == "fcm"
        assert retry.payload["from"] == ["in_doubt"] and retry.payload["to"] == "pending"
        assert all(d.lease_until is None for d in deliveries_of(session))
        assert verify_chain(session) is None

        again = reconcile(session, resend_email_in_doubt=resend_email)
        assert (again.requeued, again.in_doubt, again.retried_in_doubt) == (0, 0, 0)


def test_email_held_in_doubt_is_resent_once_the_policy_allows(own_db):
    with own_db() as session, session.begin():
        ids = five_deliveries(session)
        email = ids[ChannelName.EMAIL]
        set_state(session, email, DeliveryState.IN_DOUBT)

        assert reconcile(session, resend_email_in_doubt=False).retried_in_doubt == 0
        assert reconcile(session, resend_email_in_doubt=True).retried_in_doubt == 1
        (delivery,) = [d for d in deliveries_of(session) if d.id == email]
        assert delivery.state is DeliveryState.PENDING


def test_final_and_pending_deliveries_are_left_alone(own_db):
    with own_db() as session, session.begin():
        ids = five_deliveries(session)
        past = utcnow() - timedelta(hours=1)
        set_state(session, ids[ChannelName.EMAIL], DeliveryState.SENT, lease_until=past)
        set_state(session, ids[ChannelName.FCM], DeliveryState.FAILED, lease_until=past)
        set_state(session, ids[ChannelName.PORTAL], DeliveryState.PENDING, lease_until=past)

        result = reconcile(session)

        assert (result.requeued, result.in_doubt, result.retried_in_doubt) == (0, 0, 0)
        assert {d.channel: d.state for d in deliveries_of(session)}[ChannelName.EMAIL] is (
            DeliveryState.SENT)
