"""Invitations by email (from the command line) and self-registration proven by an invoice."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.models import AccountToken, Role, TokenPurpose, User
from tests.peers import smtp as smtp_peers
from tests.peers.smtp import SmtpPeer
from tests.portal.auth.helpers import (
    deliver,
    events_of,
    link_in,
    people,
    post,
    take_queued_mail,
    with_settings,
)

smtp_peer = smtp_peers.smtp_peer
NEW_PASSWORD = "a long new password"


@pytest.fixture
def users(session):
    return people(session)


def _register(client, **overrides):
    form = dict(account_number="C1", invoice_number="INV-A1", invoice_total="120.15",
                name="Alice Two", email="second@alice.example")
    form.update(overrides)
    return post(client, "/register", **form)


def test_an_invited_contact_sets_a_password_and_is_signed_in(
        app, client, runner, session, users, smtp_peer: SmtpPeer):
    alice, _bob = users
    take_queued_mail(app)
    result = runner.invoke(args=["customers", "invite", "Finance@Alice.example",
                                 "--account", "C1"])
    assert result.exit_code == 0, result.output
    user = session.scalars(sa.select(User).where(User.email == "finance@alice.example")).one()
    assert user.customer_id == alice.customer_id and user.role is Role.CUSTOMER
    assert user.password_hash is None
    [token_id] = take_queued_mail(app)
    assert events_of(session, "auth.invitation_created", str(user.id))

    assert deliver(app, smtp_peer, token_id)
    [mail] = smtp_peer.messages
    assert mail.rcpt_tos == ("finance@alice.example",)
    assert mail.parsed()["Subject"] == "You are invited to see your invoices online"
    token = link_in(mail, "/invitation/")
    [sent] = events_of(session, "auth.invitation_sent", str(user.id))
    assert token not in str(sent.payload)

    page = client.get(f"/invitation/{token}")
    assert page.status_code == 200 and b"finance@alice.example" in page.data
    response = post(client, f"/invitation/{token}", password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert response.status_code == 302 and response.location.endswith("/invoices")
    assert client.get("/invoices").status_code == 200
    assert events_of(session, "auth.invitation_accepted", str(user.id))
    assert client.get(f"/invitation/{token}").status_code == 404  # used up
    assert session.get(AccountToken, token_id).used_at is not None


def test_inviting_an_unknown_account_or_a_taken_address_says_what_to_do(runner, users):
    unknown = runner.invoke(args=["customers", "invite", "x@example.com", "--account", "NOPE"])
    assert unknown.exit_code != 0 and "no customer has account or customer number" in \
        unknown.output
    taken = runner.invoke(args=["customers", "invite", "bob@example.com", "--account", "C1"])
    assert taken.exit_code != 0 and "already has a sign-in" in taken.output


def _registration_link(app, smtp_peer: SmtpPeer) -> str:
    """Send the one queued registration email; the token of its link."""
    [token_id] = take_queued_mail(app)
    assert deliver(app, smtp_peer, token_id)
    mail = smtp_peer.messages[-1]
    assert mail.parsed()["Subject"] == "Confirm your email address"
    return link_in(mail, "/register/")


def test_registration_is_confirmed_from_a_link_emailed_to_the_address(
        app, client, session, users, smtp_peer: SmtpPeer):
    alice, _bob = users
    take_queued_mail(app)
    page = client.get("/register")
    assert page.status_code == 200 and b"Total amount of that invoice" in page.data
    assert b'type="password"' not in page.data  # chosen from the emailed link
    response = _register(client, invoice_total="120,15")
    assert response.status_code == 302 and response.location.endswith("/sign-in")
    assert b"we have emailed a link to second@alice.example" in \
        client.get(response.location).data
    # Nobody is signed in, and the new sign-in has no password until the link is used.
    assert client.get("/invoices").status_code == 302
    user = session.scalars(sa.select(User).where(User.email == "second@alice.example")).one()
    assert user.customer_id == alice.customer_id and user.role is Role.CUSTOMER
    assert user.password_hash is None
    [registered] = events_of(session, "auth.registered", str(user.id))
    assert registered.payload["customer_id"] == alice.customer_id

    token = _registration_link(app, smtp_peer)
    assert smtp_peer.messages[-1].rcpt_tos == ("second@alice.example",)
    [sent] = events_of(session, "auth.registration_link_sent", str(user.id))
    assert token not in str(sent.payload)
    page = client.get(f"/register/{token}")
    assert page.status_code == 200 and b"second@alice.example" in page.data
    response = post(client, f"/register/{token}", password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert response.status_code == 302 and response.location.endswith("/invoices")
    assert b"INV-A1" in client.get("/invoices").data
    assert events_of(session, "auth.registration_confirmed", str(user.id))
    assert client.get(f"/register/{token}").status_code == 404  # used up
    session.expire_all()
    assert session.get(User, user.id).password_hash.startswith("$argon2id$")
    # Confirmed, the address is taken like any other.
    assert b"already has a sign-in" in _register(app.test_client()).data


def test_a_registration_waiting_for_its_link_can_be_made_again_for_another_account(
        app, client, session, users, smtp_peer: SmtpPeer):
    """Typing an address first does not hold it: whoever registers it last with a valid
    invoice gets the link, and a link sent before no longer opens anything."""
    alice, bob = users
    take_queued_mail(app)
    assert _register(client).status_code == 302
    first = _registration_link(app, smtp_peer)
    assert _register(client, account_number="C2", invoice_number="INV-B1").status_code == 302
    assert client.get(f"/register/{first}").status_code == 404
    second = _registration_link(app, smtp_peer)
    user = session.scalars(sa.select(User).where(User.email == "second@alice.example")).one()
    session.refresh(user)
    assert user.customer_id == bob.customer_id
    [_, again] = events_of(session, "auth.registered", str(user.id))
    assert again.payload["replaced_customer_id"] == alice.customer_id
    assert post(client, f"/register/{second}", password=NEW_PASSWORD,
                confirm=NEW_PASSWORD).status_code == 302
    listing = client.get("/invoices").data
    assert b"INV-B1" in listing and b"INV-A1" not in listing


@pytest.mark.parametrize("field,value", [
    ("account_number", "C2"),          # Bob's account, Alice's invoice
    ("invoice_number", "INV-B1"),      # an invoice of another customer
    ("invoice_total", "120.16"),       # one cent off
    ("invoice_total", "120"),
    ("invoice_total", "lots"),
])
def test_registration_needs_all_three_to_match_and_fails_the_same_way(
        client, session, users, field, value):
    response = _register(client, **{field: value})
    assert response.status_code == 200
    assert b"These details do not match an invoice of ours" in response.data
    assert session.scalars(sa.select(User).where(
        User.email == "second@alice.example")).first() is None
    assert client.get("/invoices").status_code == 302


def test_registration_is_rate_limited(app, client, session, users, monkeypatch):
    with_settings(monkeypatch, app, sign_in_limit_per_address=3)
    for total in ("1.00", "2.00", "3.00"):
        assert _register(client, invoice_total=total).status_code == 200
    limited = _register(client)  # even the right details wait now
    assert limited.status_code == 429 and b"try again in" in limited.data
    assert session.scalars(sa.select(User).where(
        User.email == "second@alice.example")).first() is None


def test_registration_refuses_an_address_that_already_signs_in(client, session, users):
    response = _register(client, email="bob@example.com")
    assert response.status_code == 200 and b"already has a sign-in" in response.data


def test_invitation_and_registration_forms_refuse_posts_without_csrf_token(client, users):
    assert client.post("/register", data={"account_number": "C1"}).status_code == 400
    assert client.post("/invitation/whatever", data={}).status_code in (400, 404)
    assert client.post("/register/whatever", data={}).status_code in (400, 404)


def test_expired_invitation_is_refused(client, session, users):
    from datetime import timedelta

    from portal.auth.tokens import token_digest
    from portal.models.base import utcnow

    alice, _bob = users
    session.add(AccountToken(purpose=TokenPurpose.INVITATION, user_id=alice.id,
                             created_by="cli", token_sha256=token_digest("i" * 43),
                             expires_at=utcnow() - timedelta(minutes=1)))
    session.flush()
    assert client.get("/invitation/" + "i" * 43).status_code == 404
