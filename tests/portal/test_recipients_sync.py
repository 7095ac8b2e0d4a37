"""Customers become recipients: one at a time or thousands before a run, with the same result."""

from __future__ import annotations

import sqlalchemy as sa

from distribution.channels.base import ChannelName
from distribution.events import Event
from distribution.recipients import Address, Recipient, add_address, mark_dead
from portal.models import Contact
from portal.recipients_sync import recipient_key, sync_customer, sync_customers
from tests.factories import make_customer, make_organisation


def _addresses(session, customer) -> set[tuple[str, str, bool]]:
    return {(a.channel.value, a.value, a.dead_since is None) for a in session.scalars(
        sa.select(Address).join(Recipient).where(
            Recipient.recipient_key == recipient_key(customer)))}


def test_bulk_sync_gives_what_one_by_one_gives(session):
    org = make_organisation(session)
    one_by_one = [make_customer(session, org, f"A{n}") for n in range(3)]
    in_bulk = [make_customer(session, org, f"B{n}", peppol_endpoint_scheme="0208",
                             peppol_endpoint_id="0123456749") for n in range(3)]
    for customer in one_by_one:
        sync_customer(session, customer, actor="test")
    sync_customers(session, in_bulk, actor="test")
    assert _addresses(session, one_by_one[0]) == {("email", "a0@example.com", True)}
    assert _addresses(session, in_bulk[2]) == {("email", "b2@example.com", True),
                                               ("peppol", "0208:0123456749", True)}
    recipient = session.scalars(sa.select(Recipient).where(
        Recipient.recipient_key == recipient_key(in_bulk[1]))).one()
    assert (recipient.name, recipient.language) == ("Customer B1", "en")


def test_bulk_sync_adds_a_new_contact_and_follows_a_new_name(session):
    org = make_organisation(session)
    customer = make_customer(session, org, "C7")
    sync_customers(session, [customer], actor="test")
    customer.contacts.append(Contact(email="Billing@Example.com"))
    customer.name, customer.language = "Renamed NV", "nl"
    session.flush()
    sync_customers(session, [customer], actor="test")
    assert _addresses(session, customer) == {("email", "c7@example.com", True),
                                             ("email", "billing@example.com", True)}
    recipient = session.scalars(sa.select(Recipient).where(
        Recipient.recipient_key == recipient_key(customer))).one()
    assert (recipient.name, recipient.language) == ("Renamed NV", "nl")
    added = session.scalars(sa.select(Event).where(
        Event.subject_key == recipient_key(customer), Event.kind == "address.added")).all()
    assert len(added) == 2  # a second sync with nothing new records nothing


def test_a_bounced_address_stays_dead_through_every_sync(session):
    org = make_organisation(session)
    customer = make_customer(session, org, "C8")
    recipient = sync_customer(session, customer, actor="test")
    (address,) = recipient.addresses
    mark_dead(session, address, "550 5.1.1 user unknown", actor="test")
    sync_customer(session, customer, actor="test")
    sync_customers(session, [customer], actor="test")
    assert _addresses(session, customer) == {("email", "c8@example.com", False)}
    # Given again on purpose (the customer or an agent), it comes back, and the log says so.
    add_address(session, recipient, ChannelName.EMAIL, "c8@example.com", actor="agent")
    assert _addresses(session, customer) == {("email", "c8@example.com", True)}
    assert session.scalar(sa.select(sa.func.count()).select_from(Event).where(
        Event.subject_key == recipient_key(customer), Event.kind == "address.revived")) == 1
