"""Rate limits: per account and per client address, kept in the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.auth import limits
from portal.models import SignInAttempt
from portal.models.base import utcnow
from tests.portal.auth.helpers import events_of, people, post, sign_in, with_settings


@pytest.fixture
def users(session):
    return people(session)


def test_wrong_passwords_lock_the_account_for_a_while_and_say_when(client, session, users):
    alice, _bob = users
    for _ in range(5):
        response = sign_in(client, "alice@example.com", "wrong password!")
        assert response.status_code == 200 and b"do not match" in response.data
    limited = sign_in(client, "alice@example.com")  # even the right password waits
    assert limited.status_code == 429
    assert b"try again in 15 minutes" in limited.data
    assert client.get("/invoices").status_code == 302
    failures = events_of(session, "auth.sign_in_failed", str(alice.id))
    assert len(failures) == 5 and all("wrong" not in str(e.payload) for e in failures)
    # Once the window has passed, the right password works again.
    session.execute(sa.update(SignInAttempt).values(at=utcnow() - timedelta(minutes=16)))
    assert sign_in(client, "alice@example.com").status_code == 302


def test_a_success_does_not_reset_the_address_limit(app, client, session, users, monkeypatch):
    with_settings(monkeypatch, app, sign_in_limit_per_address=4)
    # An attacker guesses Bob's password, signing in to an account of their own in between.
    for _ in range(2):
        assert sign_in(client, "bob@example.com", "guess one!!").status_code == 200
        assert sign_in(client, "alice@example.com").status_code == 302
        post(client, "/sign-out", "/security")
    for _ in range(2):
        assert sign_in(client, "bob@example.com", "guess two!!").status_code == 200
    assert sign_in(client, "nobody@example.com", "guess three").status_code == 429
    # Another address is not affected.
    other = app.test_client()
    assert sign_in(other, "bob@example.com",
                   environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 302


def test_the_limit_holds_across_processes_because_it_is_in_the_database(app, session, users):
    settings = app.config["HERALD"]
    for _ in range(5):
        limits.record(session, "password", "198.51.100.1", "alice@example.com",
                      succeeded=False)
    found = limits.check(session, settings, "password", "203.0.113.9", "ALICE@example.com ")
    assert found is not None and 14 <= found.minutes <= 15
    assert limits.check(session, settings, "password", "203.0.113.9", "bob@example.com") is None
    stored = session.scalars(sa.select(SignInAttempt.account_key)).first()
    assert "alice" not in stored  # the typed address is kept as a digest only


def test_link_requests_are_limited_per_address(app, client, session, users, monkeypatch):
    with_settings(monkeypatch, app, sign_in_limit_per_address=3)
    for n in range(3):
        response = post(client, "/sign-in/link", email=f"someone{n}@example.com")
        assert response.status_code == 302
    response = post(client, "/sign-in/link", email="alice@example.com")
    assert response.status_code == 429 and b"try again in" in response.data
    response = post(client, "/password/forgot", email="alice@example.com")
    assert response.status_code == 302  # a different step has its own count


def test_old_attempts_sessions_and_links_are_purged(app, session, users):
    from portal.auth.housekeeping import purge
    from portal.models import AccountToken, SignInSession, TokenPurpose

    alice, _bob = users
    now = utcnow()
    session.add_all([
        SignInAttempt(action="password", ip_address="192.0.2.1", at=now - timedelta(days=2)),
        SignInAttempt(action="password", ip_address="192.0.2.1", at=now - timedelta(minutes=5)),
        SignInSession(user_id=alice.id, secret_sha256="0" * 64, method="password",
                      expires_at=now - timedelta(days=100), ended_at=now - timedelta(days=100)),
        SignInSession(user_id=alice.id, secret_sha256="1" * 64, method="password",
                      expires_at=now + timedelta(hours=1)),
        AccountToken(purpose=TokenPurpose.MAGIC_LINK, user_id=alice.id, created_by="t",
                     expires_at=now - timedelta(days=91)),
        AccountToken(purpose=TokenPurpose.MAGIC_LINK, user_id=alice.id, created_by="t",
                     expires_at=now + timedelta(minutes=5)),
    ])
    session.flush()
    assert purge(session, app.config["HERALD"]) == {"attempts": 1, "sessions": 1, "links": 1}
    assert session.scalar(sa.select(sa.func.count()).select_from(SignInAttempt)) == 1
    assert session.scalar(sa.select(sa.func.count()).select_from(SignInSession)) == 1
