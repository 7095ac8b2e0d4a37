"""The customer's Peppol ID: form, scheme and check digits, stored as the Peppol address."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from distribution.channels.base import ChannelName
from distribution.recipients import Address
from portal.preferences.peppol_ids import SCHEMES, PeppolIdError, parse_peppol_id
from portal.recipients_sync import recipient_key, sync_customer
from tests.portal import preferences_helpers as helpers
from tests.portal.preferences_helpers import csrf_token, events_of, sign_in


@pytest.mark.parametrize(("text", "expected"), [
    ("0208:0123456749", "0208:0123456749"),
    ("  0208:0123.456.749 ", "0208:0123456749"),
    ("iso6523-actorid-upis::0208:0123456749", "0208:0123456749"),
    ("9925:be0123456749", "9925:BE0123456749"),
    ("0088:5412345000013", "0088:5412345000013"),
    ("0106:12345678", "0106:12345678"),
    ("0192:974760673", "0192:974760673"),
])
def test_good_ids_are_tidied(app, text, expected):
    with app.test_request_context():
        assert str(parse_peppol_id(text)) == expected


@pytest.mark.parametrize(("text", "fix"), [
    ("0123456749", "Put the scheme code and a colon before the identifier, e.g. "
                   "0208:0123456749"),
    ("0208:0123456748", "check digits of 0123456748 do not add up"),
    ("0208:12345", "Type it like 0208:0123456749"),
    ("9925:0123456749", "Type it like 9925:BE0123456749"),
    ("0088:5412345000014", "check digits"),
    ("0192:974760672", "check digits"),
    ("1234:5678", "1234 is not a Peppol scheme code we know"),
    ("", "Enter your Peppol ID as scheme:identifier"),
])
def test_bad_ids_get_a_message_naming_the_fix(app, text, fix):
    with app.test_request_context(), pytest.raises(PeppolIdError) as raised:
        parse_peppol_id(text)
    assert fix in str(raised.value)


def test_every_scheme_example_passes_its_own_check(app):
    with app.test_request_context():
        for code, scheme in SCHEMES.items():
            assert str(parse_peppol_id(f"{code}:{scheme.example}")) == f"{code}:{scheme.example}"


@pytest.fixture
def customers(session):
    return helpers.two_customers(session)


def test_entering_changing_and_removing_the_peppol_id(client, session, customers):
    alice, bob = customers
    sign_in(client, "alice@example.com")
    token = csrf_token(client, "/preferences")
    bad = client.post("/preferences/peppol", data={"csrf_token": token,
                                                   "peppol_id": "0208:0123456748"})
    assert bad.status_code == 422
    assert b"check digits" in bad.data and b'aria-invalid="true"' in bad.data
    assert alice.peppol_endpoint_id is None

    good = client.post("/preferences/peppol", data={"csrf_token": token,
                                                    "peppol_id": "0208:0123.456.749"})
    assert good.status_code == 302 and good.location.endswith("#einvoice")
    session.refresh(alice)
    assert (alice.peppol_endpoint_scheme, alice.peppol_endpoint_id) == ("0208", "0123456749")
    recipient = sync_customer(session, alice, actor="test")
    [address] = recipient.working_addresses(ChannelName.PEPPOL)
    assert address.value == "0208:0123456749" and address.verified_at is not None
    assert "We send e-invoices to Peppol ID 0208:0123456749" in client.get(
        "/preferences").data.decode()

    client.post("/preferences/peppol", data={"csrf_token": token,
                                             "peppol_id": "9925:BE0123456749"})
    session.refresh(address)
    assert address.dead_reason == "replaced by the customer"
    [changed, replaced] = events_of(session, "peppol_id.changed", recipient_key(alice))
    assert changed.payload == {"old": None, "new": "0208:0123456749"}
    assert replaced.payload == {"old": "0208:0123456749", "new": "9925:BE0123456749"}

    assert client.post("/preferences/peppol/remove",
                       data={"csrf_token": token}).status_code == 302
    session.refresh(alice)
    assert alice.peppol_endpoint_id is None
    assert sync_customer(session, alice, actor="test").working_addresses(
        ChannelName.PEPPOL) == []
    # Bob's record was never touched.
    session.refresh(bob)
    assert bob.peppol_endpoint_id is None
    assert session.scalar(sa.select(sa.func.count()).select_from(Address).where(
        Address.channel == ChannelName.PEPPOL, Address.dead_since.is_(None))) == 0
