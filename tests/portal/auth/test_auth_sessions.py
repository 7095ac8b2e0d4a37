"""Sign-in sessions: one row per device, listed on the Security page and ended from there."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.models import SignInSession
from portal.models.base import utcnow
from tests.portal.auth.helpers import csrf_token, events_of, people, post, sign_in


@pytest.fixture
def users(session):
    return people(session)


def _rows(session, user):
    session.expire_all()
    return list(session.scalars(sa.select(SignInSession).where(
        SignInSession.user_id == user.id).order_by(SignInSession.id)))


def test_signing_in_opens_a_session_row_and_records_it(client, session, users):
    alice, _bob = users
    # Flask-Login's strong session protection: the browser keeps its user agent.
    client.environ_base["HTTP_USER_AGENT"] = "Mozilla/5.0 (Android 14) Firefox/130.0"
    response = sign_in(client, "Alice@Example.com")
    assert response.status_code == 302
    [row] = _rows(session, alice)
    assert row.ended_at is None and row.ip_address == "127.0.0.1"
    assert row.method == "password" and row.user_agent == "Firefox on Android"
    [event] = events_of(session, "auth.signed_in", str(alice.id))
    assert event.subject_type == "user" and event.payload["session_id"] == row.id
    assert "correct horse battery" not in str(event.payload)
    page = client.get("/security")
    assert page.status_code == 200
    assert b"This device" in page.data and b"Sign out this device" in page.data


def test_sign_out_ends_the_session_row(client, session, users):
    alice, _bob = users
    sign_in(client, "alice@example.com")
    response = post(client, "/sign-out", "/invoices")
    assert response.status_code == 302
    [row] = _rows(session, alice)
    assert row.ended_reason == "signed_out"
    assert events_of(session, "auth.signed_out", str(alice.id))
    assert events_of(session, "auth.session_ended", str(alice.id))
    assert client.get("/invoices").status_code == 302


def test_ending_a_device_signs_that_client_out_and_only_that_one(app, session, users):
    alice, _bob = users
    phone, laptop = app.test_client(), app.test_client()
    sign_in(phone, "alice@example.com")
    sign_in(laptop, "alice@example.com")
    phone_row, laptop_row = _rows(session, alice)
    assert phone.get("/invoices").status_code == 200

    page = laptop.get("/security").data.decode()
    assert page.count("Sign out this device") == 2
    response = post(laptop, "/security/sessions/end", "/security", session_id=str(phone_row.id))
    assert response.status_code == 302
    # The phone's next request finds its session ended: signed out.
    assert phone.get("/invoices").status_code == 302
    assert laptop.get("/invoices").status_code == 200
    phone_row, laptop_row = _rows(session, alice)
    assert phone_row.ended_reason == "signed_out_from_devices" and laptop_row.ended_at is None


def test_sign_out_everywhere_else_keeps_this_device(app, session, users):
    alice, _bob = users
    clients = [app.test_client() for _ in range(3)]
    for each in clients:
        sign_in(each, "alice@example.com")
    response = post(clients[0], "/security/sessions/end-others", "/security")
    assert response.status_code == 302
    assert clients[0].get("/invoices").status_code == 200
    assert [c.get("/invoices").status_code for c in clients[1:]] == [302, 302]
    assert [r.ended_at is None for r in _rows(session, alice)] == [True, False, False]


def test_another_users_session_cannot_be_ended(app, session, users):
    _alice, bob = users
    alices, bobs = app.test_client(), app.test_client()
    sign_in(alices, "alice@example.com")
    sign_in(bobs, "bob@example.com")
    [bob_row] = _rows(session, bob)
    response = post(alices, "/security/sessions/end", "/security", session_id=str(bob_row.id))
    assert response.status_code == 404
    assert bobs.get("/invoices").status_code == 200


def test_ending_a_device_without_csrf_token_is_refused(client, session, users):
    alice, _bob = users
    sign_in(client, "alice@example.com")
    [row] = _rows(session, alice)
    response = client.post("/security/sessions/end", data={"session_id": str(row.id)})
    assert response.status_code == 400
    assert _rows(session, alice)[0].ended_at is None


def test_an_idle_session_ends(client, session, users):
    alice, _bob = users
    sign_in(client, "alice@example.com")
    [row] = _rows(session, alice)
    row.last_seen_at = utcnow() - timedelta(minutes=61)
    session.flush()
    assert client.get("/invoices").status_code == 302
    assert _rows(session, alice)[0].ended_reason == "idle"


def test_a_session_ends_at_its_absolute_lifetime_even_when_used(client, session, users):
    alice, _bob = users
    sign_in(client, "alice@example.com")
    [row] = _rows(session, alice)
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.flush()
    assert client.get("/invoices").status_code == 302
    assert _rows(session, alice)[0].ended_reason == "expired"


def test_using_a_session_keeps_it_alive(client, session, users):
    alice, _bob = users
    sign_in(client, "alice@example.com")
    [row] = _rows(session, alice)
    row.last_seen_at = utcnow() - timedelta(minutes=50)
    session.flush()
    assert client.get("/invoices").status_code == 200
    assert utcnow() - _rows(session, alice)[0].last_seen_at < timedelta(minutes=1)


def test_security_page_needs_sign_in_and_is_in_the_menu(client, users):
    assert client.get("/security").status_code == 302
    sign_in(client, "alice@example.com")
    assert b'href="/security"' in client.get("/invoices").data
    assert csrf_token(client, "/security")


def test_keep_me_signed_in_has_no_idle_limit_but_still_an_end(client, session, users):
    alice, _bob = users
    sign_in(client, "alice@example.com", remember="y")
    [row] = _rows(session, alice)
    assert row.remembered
    assert timedelta(days=29) < row.expires_at - utcnow() <= timedelta(days=30)
    row.last_seen_at = utcnow() - timedelta(days=3)
    session.flush()
    assert client.get("/invoices").status_code == 200
    row = _rows(session, alice)[0]
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.flush()
    assert client.get("/invoices").status_code == 302
    assert _rows(session, alice)[0].ended_reason == "expired"
