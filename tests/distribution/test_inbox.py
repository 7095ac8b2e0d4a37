"""The portal inbox: sent, then delivered when listed, then viewed when opened."""

from __future__ import annotations

from distribution.channels.base import ChannelName
from distribution.deliveries import DeliveryState
from distribution.events import events_for
from distribution.inbox import inbox, mark_listed, mark_viewed
from distribution.sqltypes import utcnow
from tests.distribution.conftest import deliveries_of, make_recipient, run_for, set_state


def _sent_run(session):
    make_recipient(session, "r1")
    make_recipient(session, "r2", email="bob@example.com")
    run_for(session, ["r1", "r2"])
    for delivery in deliveries_of(session):
        set_state(session, delivery.id, DeliveryState.SENT, sent_at=utcnow())


def test_inbox_lists_only_the_recipients_own_notifications(session):
    _sent_run(session)
    items = inbox(session, "r1")
    assert [(i.subject_key, i.unread) for i in items] == [("invoice:r1", True)]
    assert items[0].parameters["number"] == "INV-r1"
    assert inbox(session, "nobody") == []


def test_listing_delivers_and_opening_views_every_channel(session):
    _sent_run(session)
    items = inbox(session, "r1")
    assert mark_listed(session, items, actor="customer:r1") == 1
    assert mark_listed(session, inbox(session, "r1"), actor="customer:r1") == 0  # once only
    portal, = deliveries_of(session, channel=ChannelName.PORTAL, state=DeliveryState.DELIVERED)
    assert mark_viewed(session, "r1", ["invoice:r1"], actor="customer:r1") == 2  # email too
    states = {(d.channel, d.state) for d in deliveries_of(session)}
    assert (ChannelName.PORTAL, DeliveryState.VIEWED) in states
    assert (ChannelName.EMAIL, DeliveryState.VIEWED) in states
    assert [e.kind for e in events_for(session, "delivery", str(portal.id))][-2:] == [
        "delivery.delivered", "delivery.viewed"]
    # the other customer's deliveries are untouched
    assert mark_viewed(session, "r1", ["invoice:r2"], actor="customer:r1") == 0
