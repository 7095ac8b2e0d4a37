""""How we reach you": channel choices, email addresses with verification, app devices."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage

import pytest
import sqlalchemy as sa

from distribution.channels.base import ChannelName
from distribution.channels.email import SmtpSettings
from distribution.preferences import Preference, resolve
from distribution.recipients import Address, add_address
from distribution.sqltypes import utcnow
from portal.db import get_database
from portal.models import CustomerEmailAddress
from portal.preferences import emails
from portal.preferences.emails import token_digest
from portal.preferences.verification_mail import send_verification, verification_task
from portal.queue import get_huey
from portal.recipients_sync import recipient_key, sync_customer
from tests.peers import smtp as smtp_peers
from tests.peers.smtp import SmtpPeer
from tests.portal import preferences_helpers as helpers
from tests.portal.preferences_helpers import csrf_token, events_of, sign_in

smtp_peer = smtp_peers.smtp_peer


@pytest.fixture
def customers(session):
    return helpers.two_customers(session)


@pytest.fixture
def alice_client(client, customers):
    sign_in(client, "alice@example.com")
    return client


def channel_form(token: str, **overrides: str) -> dict[str, str]:
    """The channels form as the page would post it unchanged, with ``overrides``."""
    data = {"csrf_token": token, "general-first": "email", "general-second": "",
            "general-third": "", "general-pdf": "y"}
    for code in ("invoice", "credit_note", "reminder", "receipt", "signature_request", "notice"):
        data.update({f"{code}-mode": "general", f"{code}-first": "email",
                     f"{code}-second": "", f"{code}-third": ""})
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_page_shows_every_message_type_with_mandatory_ones_that_cannot_be_switched_off(
        alice_client):
    page = alice_client.get("/preferences")
    assert page.status_code == 200
    html = page.data.decode()
    assert "<h1>How we reach you</h1>" in html
    assert 'href="/preferences">How we reach you</a>' in html  # the nav link
    assert 'rel="manifest" href="/manifest.webmanifest"' in html
    for code in ("invoice", "credit_note", "reminder", "receipt", "signature_request", "notice"):
        assert f'id="type-{code}"' in html
    # Not mandatory: "do not send" is offered; mandatory: it is not, and it says so.
    assert 'name="invoice-mode" value="off"' in html
    assert 'name="notice-mode" value="off"' not in html
    assert 'name="signature_request-mode" value="off"' not in html
    assert html.count('class="required-badge"') == 2
    # The effect is explained, from the engine's own resolver: the contact's email is on record.
    effect = re.search(r'id="effect-invoice">([^<]+)<', html).group(1)
    assert "We send it by email and the portal." in effect
    assert "c1@example.com" in html and "Confirmed" in html
    assert "<script>" not in html and " style=" not in html and " onclick=" not in html


def test_staff_and_visitors_have_no_preferences_page(client, customers):
    assert client.get("/preferences").status_code == 302  # to sign-in
    sign_in(client, "ops@example.com")
    assert client.get("/preferences").status_code == 403


def test_saving_channels_goes_through_distribution_and_records_who_old_and_new(
        alice_client, session, customers):
    alice, _bob = customers
    token = csrf_token(alice_client, "/preferences")
    response = alice_client.post("/preferences/channels", data=channel_form(
        token, **{"general-first": "web_push", "general-second": "email", "general-ubl": "y",
                  "invoice-mode": "custom", "invoice-first": "peppol", "invoice-second": "email",
                  "invoice-pdf": None, "reminder-mode": "off"}))
    assert response.status_code == 302 and response.location.endswith("/preferences#channels")
    recipient = sync_customer(session, alice, actor="test")
    rows = {p.message_type: p for p in session.scalars(
        sa.select(Preference).where(Preference.recipient_id == recipient.id))}
    assert rows["*"].channels == ["web_push", "email"]
    assert rows["*"].email_attachments == ["pdf", "ubl"]
    assert rows["invoice"].channels == ["peppol", "email"]
    assert rows["invoice"].email_attachments == []
    assert rows["reminder"].opted_out is True
    assert "receipt" not in rows  # "as my general choice" needs no row of its own
    # What the engine will do: no push subscription and no Peppol ID yet, so email.
    invoice = resolve(session, recipient, "invoice")
    assert [c.channel for c in invoice.choices] == [ChannelName.EMAIL]
    assert resolve(session, recipient, "reminder").opted_out
    receipt = resolve(session, recipient, "receipt")
    assert [c.channel for c in receipt.choices] == [ChannelName.EMAIL]
    assert receipt.email_attachments == ["pdf", "ubl"]

    changes = {e.payload["message_type"]: e
               for e in events_of(session, "preference.changed", recipient_key(alice))}
    # One event per real change: the types that follow the general choice log nothing.
    assert set(changes) == {"*", "invoice", "reminder"}
    assert changes["*"].payload["old"]["channels"] == ["email", "portal"]
    assert changes["*"].payload["new"]["channels"] == ["web_push", "email"]
    assert changes["reminder"].payload["new"]["mode"] == "off"
    assert changes["*"].actor.startswith("portal:user:")

    page = alice_client.get("/preferences").data.decode()
    assert "Saved." in page
    assert re.search(r'name="invoice-first"[^>]*>.*?<option selected value="peppol"', page, re.S)
    # Saving the same again changes nothing and records nothing.
    count = len(events_of(session, "preference.changed"))
    again = alice_client.post("/preferences/channels", data=channel_form(
        csrf_token(alice_client, "/preferences"),
        **{"general-first": "web_push", "general-second": "email", "general-ubl": "y",
           "invoice-mode": "custom", "invoice-first": "peppol", "invoice-second": "email",
           "invoice-pdf": None, "reminder-mode": "off"}))
    assert again.status_code == 302
    assert len(events_of(session, "preference.changed")) == count


def test_a_type_put_back_on_general_follows_later_general_changes(
        alice_client, session, customers):
    alice, _bob = customers
    own = {"invoice-mode": "custom", "invoice-first": "portal", "invoice-pdf": None}
    alice_client.post("/preferences/channels",
                      data=channel_form(csrf_token(alice_client, "/preferences"), **own))
    alice_client.post("/preferences/channels", data=channel_form(
        csrf_token(alice_client, "/preferences"), **own, **{"general-first": "web_push",
                                                            "general-ubl": "y"}))
    recipient = sync_customer(session, alice, actor="test")
    invoice = resolve(session, recipient, "invoice")
    assert [c.channel for c in invoice.choices] == [ChannelName.PORTAL]  # still its own
    alice_client.post("/preferences/channels", data=channel_form(
        csrf_token(alice_client, "/preferences"), **{"general-first": "web_push",
                                                     "general-second": "email",
                                                     "general-ubl": "y"}))
    invoice = resolve(session, recipient, "invoice")
    # Back on general: the general channels (web push has no subscription, so email) and
    # the general attachments, although its row once said otherwise.
    assert [c.channel for c in invoice.choices] == [ChannelName.EMAIL]
    assert invoice.email_attachments == ["pdf", "ubl"]
    [back] = [e for e in events_of(session, "preference.changed", recipient_key(alice))
              if e.payload["message_type"] == "invoice" and e.payload["new"]["mode"] == "general"]
    assert back.payload["old"]["channels"] == ["portal"]
    # Its row stays in step when the general attachments change again, without an event.
    count = len(events_of(session, "preference.changed"))
    alice_client.post("/preferences/channels", data=channel_form(
        csrf_token(alice_client, "/preferences"), **{"general-first": "email"}))
    assert resolve(session, recipient, "invoice").email_attachments == ["pdf"]
    assert len(events_of(session, "preference.changed")) == count + 1  # the general one


def test_a_mandatory_type_cannot_be_switched_off_and_nothing_is_half_saved(
        alice_client, session, customers):
    token = csrf_token(alice_client, "/preferences")
    response = alice_client.post("/preferences/channels", data=channel_form(
        token, **{"general-first": "portal", "notice-mode": "off"}))
    assert response.status_code == 422
    assert b"required and cannot be switched off" in response.data
    assert b'role="alert"' in response.data
    assert session.scalar(sa.select(sa.func.count()).select_from(Preference)) == 0
    assert events_of(session, "preference.changed") == []


def test_forms_without_csrf_token_are_refused(alice_client, session):
    assert alice_client.post("/preferences/channels",
                             data=channel_form(None)).status_code == 400
    assert alice_client.post("/preferences/emails",
                             data={"email": "x@example.com"}).status_code == 400
    assert session.scalar(sa.select(sa.func.count()).select_from(CustomerEmailAddress)) == 0


def test_an_added_address_is_used_only_after_its_link_is_followed(
        app, alice_client, session, customers, smtp_peer: SmtpPeer):
    alice, _bob = customers
    huey = get_huey(app)
    before = {t.id for t in huey.pending()}
    response = alice_client.post("/preferences/emails", data={
        "csrf_token": csrf_token(alice_client, "/preferences"), "email": "Billing@Alice.example"})
    assert response.status_code == 302
    row = session.scalars(sa.select(CustomerEmailAddress)).one()
    assert row.email == "billing@alice.example" and row.pending
    # Queued after the request committed, with the row id only: no token in the queue.
    queued = [t for t in huey.pending() if t.id not in before]
    assert [(t.name, t.args) for t in queued] == [(verification_task(app).name, (row.id,))]
    for task in queued:
        huey.revoke_by_id(task.id)
    # Not usable yet: no distribution address, and the page says it waits.
    recipient = sync_customer(session, alice, actor="test")
    assert "billing@alice.example" not in {a.value for a in recipient.addresses}
    assert "Not confirmed yet" in alice_client.get("/preferences").data.decode()

    smtp = SmtpSettings(host=smtp_peer.host, port=smtp_peer.port,
                        from_address="billing@herald.test", message_id_domain="herald.test",
                        timeout=5)
    assert send_verification(app, get_database(app).sessionmaker, smtp, "https://portal.test",
                             row.id)
    [mail] = smtp_peer.messages
    assert mail.rcpt_tos == ("billing@alice.example",)
    parsed: EmailMessage = mail.parsed()
    assert parsed["Subject"] == "Confirm your email address"
    body = parsed.get_body(("plain",)).get_content()
    token = re.search(r"https://portal\.test/preferences/emails/verify/(\S+)", body).group(1)
    assert token[:8] not in parsed["Message-ID"]  # the secret is in the body only
    session.refresh(row)
    assert row.token_sha256 == token_digest(token) and token not in row.token_sha256

    # Opening the link only asks; confirming (any browser, no sign-in needed) verifies.
    alice_client.post("/sign-out", data={"csrf_token": csrf_token(alice_client, "/preferences")})
    page = alice_client.get(f"/preferences/emails/verify/{token}")
    assert page.status_code == 200 and b"Confirm this address" in page.data
    assert session.scalars(sa.select(Address).where(
        Address.value == "billing@alice.example")).first() is None
    confirm = alice_client.post(f"/preferences/emails/verify/{token}",
                                data={"csrf_token": csrf_token(alice_client,
                                                               f"/preferences/emails/verify/{token}")})
    assert confirm.status_code == 200 and b"is confirmed" in confirm.data
    address = session.scalars(sa.select(Address).where(
        Address.value == "billing@alice.example")).one()
    assert address.recipient.recipient_key == recipient_key(alice)
    assert address.verified_at is not None and address.channel is ChannelName.EMAIL
    assert events_of(session, "email.verified", recipient_key(alice))
    # The token is used up.
    assert alice_client.get(f"/preferences/emails/verify/{token}").status_code == 404


def test_an_expired_or_unknown_link_verifies_nothing(client, session, customers):
    alice, _bob = customers
    row = CustomerEmailAddress(customer_id=alice.id, email="late@alice.example",
                               token_sha256=token_digest("t" * 43),
                               token_expires_at=utcnow() - timedelta(minutes=1))
    session.add(row)
    session.flush()
    expired = client.get("/preferences/emails/verify/" + "t" * 43)
    assert expired.status_code == 404 and b"expired or was already used" in expired.data
    assert client.get("/preferences/emails/verify/nonsense").status_code == 404
    session.refresh(row)
    assert row.verified_at is None


def test_adding_an_address_twice_or_a_bad_one_says_what_to_do(alice_client, session):
    token = csrf_token(alice_client, "/preferences")
    bad = alice_client.post("/preferences/emails", data={"csrf_token": token, "email": "nope"})
    assert bad.status_code == 422 and b"like name@example.com" in bad.data
    in_use = alice_client.post("/preferences/emails",
                               data={"csrf_token": token, "email": "C1@example.com"})
    assert in_use.status_code == 422 and b"already in use" in in_use.data
    assert session.scalar(sa.select(sa.func.count()).select_from(CustomerEmailAddress)) == 0


def test_a_removed_address_stays_removed_after_a_contacts_sync(alice_client, session, customers):
    alice, bob = customers
    recipient = sync_customer(session, alice, actor="test")
    [contact_email] = recipient.working_addresses(ChannelName.EMAIL)
    bobs = sync_customer(session, bob, actor="test").working_addresses(ChannelName.EMAIL)[0]
    token = csrf_token(alice_client, "/preferences")
    # Bob's address id is not Alice's to remove.
    assert alice_client.post(f"/preferences/addresses/{bobs.id}/remove",
                             data={"csrf_token": token}).status_code == 404
    assert alice_client.post(f"/preferences/addresses/{contact_email.id}/remove",
                             data={"csrf_token": token}).status_code == 302
    session.refresh(contact_email)
    assert contact_email.dead_reason == "removed by the customer"
    sync_customer(session, alice, actor="test")
    session.refresh(contact_email)
    assert contact_email.dead_since is not None
    alice_client.get("/preferences")  # shows (and so clears) the "was removed" message
    assert "c1@example.com" not in alice_client.get("/preferences").data.decode()
    session.refresh(bobs)
    assert bobs.dead_since is None


def test_pending_addresses_of_another_customer_are_not_found(client, session, customers):
    _alice, bob = customers
    bobs = CustomerEmailAddress(customer_id=bob.id, email="b@bob.example")
    session.add(bobs)
    session.flush()
    sign_in(client, "alice@example.com")
    token = csrf_token(client, "/preferences")
    for action in ("remove", "resend"):
        assert client.post(f"/preferences/emails/pending/{bobs.id}/{action}",
                           data={"csrf_token": token}).status_code == 404
    session.refresh(bobs)
    assert bobs.removed_at is None


def test_app_devices_are_listed_and_removable_but_only_ones_own(
        alice_client, session, customers):
    alice, bob = customers
    phone = add_address(session, sync_customer(session, alice, actor="test"), ChannelName.FCM,
                        "fcm-token-alice", verified=True, label="Pixel 8", actor="api")
    bobs = add_address(session, sync_customer(session, bob, actor="test"), ChannelName.FCM,
                       "fcm-token-bob", verified=True, label="Bob's phone", actor="api")
    page = alice_client.get("/preferences").data.decode()
    assert "Pixel 8" in page and "Bob&#39;s phone" not in page
    token = csrf_token(alice_client, "/preferences")
    assert alice_client.post(f"/preferences/addresses/{bobs.id}/remove",
                             data={"csrf_token": token}).status_code == 404
    response = alice_client.post(f"/preferences/addresses/{phone.id}/remove",
                                 data={"csrf_token": token})
    assert response.status_code == 302 and response.location.endswith("#apps")
    session.refresh(phone)
    session.refresh(bobs)
    assert phone.dead_since is not None and bobs.dead_since is None
    assert "Pixel 8" not in alice_client.get("/preferences").data.decode()


def test_additions_are_limited_per_day_so_the_page_cannot_be_used_to_send_mail(
        session, customers):
    alice, _bob = customers
    recipient = sync_customer(session, alice, actor="test")
    for n in range(emails.MAX_ADDITIONS_PER_DAY):
        row = emails.add_email(session, alice, recipient, f"a{n}@alice.example", actor="test")
        emails.remove_pending(session, row, actor="test")
    with pytest.raises(emails.EmailAddressError, match="too many today"):
        emails.add_email(session, alice, recipient, "one-more@alice.example", actor="test")


def test_portal_only_is_explained_as_waiting_in_the_portal(alice_client):
    alice_client.post("/preferences/channels", data=channel_form(
        csrf_token(alice_client, "/preferences"), **{"general-first": "portal"}))
    page = alice_client.get("/preferences").data.decode()
    effect = re.search(r'id="effect-receipt">([^<]+)<', page).group(1)
    assert effect == "It waits for you in the portal."
    notice = re.search(r'id="effect-notice">([^<]+)<', page).group(1)
    assert notice == "It waits for you in the portal. Required: this message always reaches you."
