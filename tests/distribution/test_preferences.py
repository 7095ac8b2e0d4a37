"""Layered preference resolution: defaults, per-type and global choices, opt-outs, fallbacks."""

from __future__ import annotations

import pytest

from distribution.channels.base import ChannelName
from distribution.preferences import ALL_TYPES, resolve, set_preference
from distribution.recipients import add_address, mark_dead
from tests.distribution.conftest import PUSH_SUBSCRIPTION, make_recipient

EMAIL, PUSH, FCM = ChannelName.EMAIL, ChannelName.WEB_PUSH, ChannelName.FCM
PORTAL, PEPPOL = ChannelName.PORTAL, ChannelName.PEPPOL


def channels(resolution) -> list[ChannelName]:
    return [choice.channel for choice in resolution.choices]


def test_organisation_defaults_when_the_customer_chose_nothing(session):
    recipient = make_recipient(session)

    resolution = resolve(session, recipient, "invoice")

    assert channels(resolution) == [EMAIL, PORTAL]
    assert resolution.choices[0].address.value == "ann@example.com"
    assert resolution.choices[1].address is None
    assert all(c.fallback_for is None and c.reason == "" for c in resolution.choices)
    assert resolution.unavailable == []
    assert resolution.email_attachments == ["pdf"]
    assert not resolution.opted_out
    assert channels(resolve(session, recipient, "receipt")) == [EMAIL]


def test_per_type_choice_beats_the_global_choice(session):
    recipient = make_recipient(session, peppol="0208:0123456749", push=PUSH_SUBSCRIPTION)
    set_preference(session, recipient, ALL_TYPES, [PUSH], email_attachments=["ubl"])
    set_preference(session, recipient, "invoice", [PEPPOL])

    assert channels(resolve(session, recipient, "invoice")) == [PEPPOL]
    reminder = resolve(session, recipient, "reminder")
    assert channels(reminder) == [PUSH]
    assert reminder.email_attachments == ["ubl"]


def test_a_per_type_row_without_channels_keeps_the_global_channels(session):
    recipient = make_recipient(session, push=PUSH_SUBSCRIPTION)
    set_preference(session, recipient, ALL_TYPES, [PUSH])
    set_preference(session, recipient, "invoice", [], email_attachments=["pdf", "ubl"])

    resolution = resolve(session, recipient, "invoice")

    assert channels(resolution) == [PUSH]
    assert resolution.email_attachments == ["pdf", "ubl"]


def test_link_only_email_is_respected(session):
    recipient = make_recipient(session)
    set_preference(session, recipient, "invoice", [EMAIL], email_attachments=[])

    assert resolve(session, recipient, "invoice").email_attachments == []


def test_opted_out_of_a_non_mandatory_type_gets_nothing(session):
    recipient = make_recipient(session)
    set_preference(session, recipient, "reminder", [EMAIL], opted_out=True)

    resolution = resolve(session, recipient, "reminder")

    assert resolution.opted_out
    assert resolution.choices == []
    assert channels(resolve(session, recipient, "invoice")) == [EMAIL, PORTAL]


def test_opted_out_of_a_mandatory_type_still_gets_it_on_the_defaults(session):
    recipient = make_recipient(session, push=PUSH_SUBSCRIPTION)
    set_preference(session, recipient, "notice", [PUSH], opted_out=True)

    resolution = resolve(session, recipient, "notice")

    assert not resolution.opted_out
    assert channels(resolution) == [EMAIL, PORTAL]


def test_global_opt_out_spares_mandatory_types_only(session):
    recipient = make_recipient(session)
    set_preference(session, recipient, ALL_TYPES, [EMAIL], opted_out=True)

    assert resolve(session, recipient, "invoice").opted_out
    assert resolve(session, recipient, "invoice").choices == []
    assert channels(resolve(session, recipient, "signature_request")) == [EMAIL, PORTAL]


@pytest.mark.parametrize(("missing", "setup", "reason"), [
    (PEPPOL, {}, "no Peppol ID is known"),
    (FCM, {}, "the mobile app is not registered on any device"),
    (PUSH, {"push": PUSH_SUBSCRIPTION, "dead": PUSH},
     "no browser has push notifications switched on"),
])
def test_an_unusable_choice_is_reported_when_another_choice_works(session, missing, setup,
                                                                  reason):
    recipient = make_recipient(session, push=setup.get("push"))
    if setup.get("dead"):
        mark_dead(session, recipient.working_addresses(setup["dead"])[0], "410 Gone",
                  actor="test")
    set_preference(session, recipient, "invoice", [missing, EMAIL])

    resolution = resolve(session, recipient, "invoice")

    assert channels(resolution) == [EMAIL]  # no extra delivery
    assert resolution.choices[0].fallback_for is None
    assert resolution.unavailable == [(missing, reason)]


def test_nothing_chosen_works_falls_back_along_the_global_order(session):
    recipient = make_recipient(session, push=PUSH_SUBSCRIPTION)
    set_preference(session, recipient, ALL_TYPES, [FCM, PUSH, EMAIL])
    set_preference(session, recipient, "invoice", [PEPPOL])

    resolution = resolve(session, recipient, "invoice")

    assert channels(resolution) == [PUSH]  # FCM (first in the global order) has no token
    fallback = resolution.choices[0]
    assert fallback.fallback_for is PEPPOL
    assert fallback.reason == "no Peppol ID is known"
    assert fallback.address.channel is PUSH
    assert resolution.unavailable == [(PEPPOL, "no Peppol ID is known")]


def test_then_along_the_organisation_defaults(session):
    recipient = make_recipient(session)
    set_preference(session, recipient, "invoice", [FCM])

    resolution = resolve(session, recipient, "invoice")

    assert channels(resolution) == [EMAIL]
    assert resolution.choices[0].fallback_for is FCM
    assert resolution.choices[0].reason == "the mobile app is not registered on any device"


def test_finally_the_portal_inbox(session):
    recipient = make_recipient(session, email=None)
    set_preference(session, recipient, "receipt", [FCM, PEPPOL])  # receipt defaults: email

    resolution = resolve(session, recipient, "receipt")

    assert channels(resolution) == [PORTAL]
    assert resolution.choices[0].address is None
    assert resolution.choices[0].fallback_for is FCM
    assert resolution.unavailable == [
        (FCM, "the mobile app is not registered on any device"),
        (PEPPOL, "no Peppol ID is known")]


def test_verified_addresses_are_preferred_and_dead_ones_skipped(session):
    recipient = make_recipient(session, email="old@example.com")
    old = recipient.working_addresses(EMAIL)[0]
    new = add_address(session, recipient, EMAIL, "new@example.com", actor="test")
    session.flush()
    assert resolve(session, recipient, "invoice").choices[0].address == new  # newest first

    old.verified_at = new.created_at
    assert resolve(session, recipient, "invoice").choices[0].address == old

    mark_dead(session, old, "550 5.1.1 no such user", actor="test")
    assert resolve(session, recipient, "invoice").choices[0].address == new

    mark_dead(session, new, "550 5.1.1 no such user", actor="test")
    resolution = resolve(session, recipient, "invoice")
    assert channels(resolution) == [PORTAL]
    assert resolution.unavailable == [(EMAIL, "no working email address")]


def test_unknown_message_type_is_refused(session):
    recipient = make_recipient(session)
    with pytest.raises(ValueError, match="unknown message type 'postcard'"):
        resolve(session, recipient, "postcard")
