"""Magic-link sign-in and password reset: random, hashed, single use, short-lived links."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask_babel import force_locale, gettext

from portal.auth.tokens import token_digest
from portal.models import AccountToken, SignInSession, TokenPurpose
from portal.models.base import utcnow
from tests.peers import smtp as smtp_peers
from tests.peers.smtp import SmtpPeer
from tests.portal.auth.helpers import (
    csrf_token,
    deliver,
    events_of,
    link_in,
    people,
    post,
    sign_in,
    take_queued_mail,
)

smtp_peer = smtp_peers.smtp_peer


@pytest.fixture
def users(session):
    return people(session)


def test_asking_for_a_link_answers_the_same_for_unknown_addresses(app, client, session, users):
    take_queued_mail(app)
    known = post(client, "/sign-in/link", email="alice@example.com")
    known_page = client.get(known.location).data.decode().replace("alice@example.com", "X")
    unknown = post(client, "/sign-in/link", email="nobody@example.com")
    unknown_page = client.get(unknown.location).data.decode().replace("nobody@example.com", "X")
    assert known.status_code == unknown.status_code == 302
    assert "we have emailed it a link" in known_page
    assert _main(known_page) == _main(unknown_page)
    # Only the known address gets a row, queued by id: no token in the queue.
    rows = list(session.scalars(sa.select(AccountToken)))
    assert [(r.purpose, r.user.email, r.token_sha256) for r in rows] == [
        (TokenPurpose.MAGIC_LINK, "alice@example.com", None)]
    assert take_queued_mail(app) == [rows[0].id]


def _main(page: str) -> str:
    start = page.index('<main')
    return page[start:page.index('</main>')].split('csrf_token')[0]


def test_magic_link_signs_in_once(app, client, session, users, smtp_peer: SmtpPeer):
    alice, _bob = users
    take_queued_mail(app)
    post(client, "/sign-in/link", email="alice@example.com")
    [token_id] = take_queued_mail(app)
    assert deliver(app, smtp_peer, token_id)
    [mail] = smtp_peer.messages
    assert mail.rcpt_tos == ("alice@example.com",)
    assert mail.parsed()["Subject"] == "Your sign-in link"
    token = link_in(mail, "/sign-in/link/")
    row = session.get(AccountToken, token_id)
    session.refresh(row)
    assert row.token_sha256 == token_digest(token)
    assert timedelta(minutes=14) < row.expires_at - utcnow() <= timedelta(minutes=15)
    [sent] = events_of(session, "auth.magic_link_sent", str(alice.id))
    assert token not in str(sent.payload)

    # Opening the link only shows a button (mail scanners open links); pressing it signs in.
    page = client.get(f"/sign-in/link/{token}")
    assert page.status_code == 200 and b"alice@example.com" in page.data
    assert client.get("/invoices").status_code == 302
    response = post(client, f"/sign-in/link/{token}")
    assert response.status_code == 302 and response.location.endswith("/invoices")
    assert client.get("/invoices").status_code == 200
    assert session.scalars(sa.select(SignInSession.method)).all() == ["magic_link"]
    # Used up.
    other = app.test_client()
    reused = other.get(f"/sign-in/link/{token}")
    assert reused.status_code == 404 and b"expired or was already used" in reused.data
    assert all(token not in str(e.payload) for e in events_of(session, "auth.signed_in"))


def test_an_expired_or_unknown_magic_link_does_nothing(client, session, users):
    alice, _bob = users
    session.add(AccountToken(purpose=TokenPurpose.MAGIC_LINK, user_id=alice.id,
                             created_by="test", token_sha256=token_digest("e" * 43),
                             expires_at=utcnow() - timedelta(seconds=1)))
    session.flush()
    assert client.get("/sign-in/link/" + "e" * 43).status_code == 404
    assert client.post("/sign-in/link/" + "e" * 43,
                       data={"csrf_token": csrf_token(client)}).status_code == 404
    assert client.get("/sign-in/link/nonsense").status_code == 404
    assert client.get("/invoices").status_code == 302


def test_a_reset_link_of_one_kind_does_not_sign_in(client, session, users):
    alice, _bob = users
    session.add(AccountToken(purpose=TokenPurpose.PASSWORD_RESET, user_id=alice.id,
                             created_by="test", token_sha256=token_digest("r" * 43),
                             expires_at=utcnow() + timedelta(minutes=5)))
    session.flush()
    assert client.get("/sign-in/link/" + "r" * 43).status_code == 404
    assert client.get("/password/reset/" + "r" * 43).status_code == 200


def test_a_new_link_ends_the_earlier_one(app, client, session, users, smtp_peer: SmtpPeer):
    take_queued_mail(app)
    post(client, "/sign-in/link", email="alice@example.com")
    post(client, "/sign-in/link", email="alice@example.com")
    first, second = take_queued_mail(app)
    deliver(app, smtp_peer, first)
    deliver(app, smtp_peer, second)
    old, new = (link_in(m, "/sign-in/link/") for m in smtp_peer.messages)
    assert client.get(f"/sign-in/link/{old}").status_code == 404
    assert client.get(f"/sign-in/link/{new}").status_code == 200


def test_password_reset_changes_the_password_and_ends_every_session(
        app, client, session, users, smtp_peer: SmtpPeer):
    alice, _bob = users
    elsewhere = app.test_client()
    sign_in(elsewhere, "alice@example.com")
    take_queued_mail(app)
    response = post(client, "/password/forgot", email="alice@example.com")
    assert response.status_code == 302
    [token_id] = take_queued_mail(app)
    deliver(app, smtp_peer, token_id)
    [mail] = smtp_peer.messages
    assert mail.parsed()["Subject"] == "Choose a new password"
    token = link_in(mail, "/password/reset/")

    short = post(client, f"/password/reset/{token}", password="short", confirm="short")
    assert short.status_code == 200 and b"at least 10 characters" in short.data
    differ = post(client, f"/password/reset/{token}", password="a new long password",
                  confirm="another long password")
    assert b"The two passwords differ" in differ.data
    done = post(client, f"/password/reset/{token}", password="a new long password",
                confirm="a new long password")
    assert done.status_code == 302 and done.location.endswith("/sign-in")

    assert elsewhere.get("/invoices").status_code == 302  # the other device is signed out
    session.expire_all()
    assert all(r.ended_at is not None for r in session.scalars(sa.select(SignInSession)))
    assert sign_in(client, "alice@example.com").status_code == 200  # old password refused
    assert sign_in(client, "alice@example.com", "a new long password").status_code == 302
    [event] = events_of(session, "auth.password_reset", str(alice.id))
    assert token not in str(event.payload)
    assert client.get(f"/password/reset/{token}").status_code == 404


def test_link_emails_are_in_the_customers_language(app, client, session, users,
                                                  smtp_peer: SmtpPeer):
    alice, _bob = users
    alice.customer.language = "nl"
    session.flush()
    take_queued_mail(app)
    post(client, "/password/forgot", email="alice@example.com")
    [token_id] = take_queued_mail(app)
    deliver(app, smtp_peer, token_id)
    [mail] = smtp_peer.messages
    with app.test_request_context(), force_locale("nl"):
        expected = gettext("Choose a new password")
    assert mail.parsed()["Subject"] == expected != "Choose a new password"


def test_link_forms_refuse_posts_without_csrf_token(client, users):
    assert client.post("/sign-in/link", data={"email": "alice@example.com"}).status_code == 400
    assert client.post("/password/forgot", data={"email": "alice@example.com"}).status_code == 400
    assert client.post("/sign-in", data={"email": "alice@example.com",
                                         "password": "correct horse battery"}).status_code == 400


def test_without_email_configured_the_task_sends_nothing_and_logs_no_token(
        app, client, session, users, caplog):
    from portal.auth.emails import account_email_task

    take_queued_mail(app)
    post(client, "/sign-in/link", email="alice@example.com")
    [token_id] = take_queued_mail(app)
    assert app.config["HERALD"].smtp is None
    with caplog.at_level("DEBUG"):
        assert account_email_task(app).call_local(token_id) is False
    assert "not sent" in caplog.text
    session.expire_all()
    assert session.get(AccountToken, token_id).token_sha256 is None  # no link was made
