"""The optional second factor: set-up with a QR code, sign-in with a code, recovery codes."""

from __future__ import annotations

import base64
import re
import time

import pyotp
import pytest
import sqlalchemy as sa

from portal.auth import totp as totp_service
from portal.models import RecoveryCode, Role
from tests.factories import make_user
from tests.portal.auth.helpers import PASSWORD, csrf_token, events_of, people, post, sign_in

SECRET_RE = re.compile(r"<code>([A-Z2-7]{32})</code>")


@pytest.fixture
def users(session):
    return people(session)


def _code(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def _enable(client) -> tuple[str, list[str]]:
    """Set up TOTP through the pages; returns the secret and the recovery codes shown."""
    page = client.get("/security/two-factor").data.decode()
    secret = SECRET_RE.search(page).group(1)
    response = post(client, "/security/two-factor", "/security/two-factor",
                    code=_code(secret, -1))
    assert response.status_code == 200, response.data[:300]
    codes = re.findall(r"<code>([0-9a-f]{5}-[0-9a-f]{5})</code>", response.data.decode())
    return secret, codes


def test_setup_shows_a_qr_code_image_and_confirms_with_a_code(client, session, users):
    alice, _bob = users
    sign_in(client, "alice@example.com")
    page = client.get("/security/two-factor").data.decode()
    image = re.search(r'<img [^>]*src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]+)"', page)
    assert image and "QR code" in image.group(2)
    svg = base64.b64decode(image.group(1))
    assert svg.startswith(b"<svg") and b'fill="#fff"' in svg  # a light ground, even in dark mode
    assert "style=" not in page and "<script>" not in page
    secret = SECRET_RE.search(page).group(1)
    wrong = post(client, "/security/two-factor", "/security/two-factor", code="000000")
    assert b"That code is not right" in wrong.data
    session.refresh(alice)
    assert not alice.totp_enabled

    response = post(client, "/security/two-factor", "/security/two-factor",
                    code=_code(secret, -1))
    codes = re.findall(r"<code>([0-9a-f]{5}-[0-9a-f]{5})</code>", response.data.decode())
    assert len(set(codes)) == 10
    session.refresh(alice)
    assert alice.totp_enabled and alice.totp_secret == secret
    stored = list(session.scalars(sa.select(RecoveryCode.code_sha256).where(
        RecoveryCode.user_id == alice.id)))
    assert len(stored) == 10 and not any(c.replace("-", "") in s for c in codes for s in stored)
    assert events_of(session, "auth.totp_enabled", str(alice.id))
    assert b"Recovery codes left: 10" in client.get("/security").data


def test_sign_in_asks_for_the_code_after_the_password(app, client, session, users):
    alice, _bob = users
    sign_in(client, "alice@example.com")
    secret, _codes = _enable(client)
    other = app.test_client()
    response = sign_in(other, "alice@example.com")
    assert response.status_code == 302 and response.location.endswith("/sign-in/code")
    assert other.get("/invoices").status_code == 302  # not signed in yet
    wrong = post(other, "/sign-in/code", code="123456")
    assert wrong.status_code == 200 and b"That code is not right" in wrong.data
    assert events_of(session, "auth.sign_in_failed", str(alice.id))[-1].payload["step"] == "totp"
    # The code used to enable is spent; the next one works, once.
    code = _code(secret)
    assert post(other, "/sign-in/code", code=code).status_code == 302
    assert other.get("/invoices").status_code == 200
    third = app.test_client()
    sign_in(third, "alice@example.com")
    replay = post(third, "/sign-in/code", code=code)
    assert b"That code is not right" in replay.data


def test_a_recovery_code_works_once(app, client, session, users):
    alice, _bob = users
    sign_in(client, "alice@example.com")
    _secret, codes = _enable(client)
    phone = app.test_client()
    sign_in(phone, "alice@example.com")
    response = post(phone, "/sign-in/code", code=codes[3].upper())
    assert response.status_code == 302
    assert phone.get("/invoices").status_code == 200
    [used] = events_of(session, "auth.recovery_code_used", str(alice.id))
    assert used.payload == {"remaining": 9} and codes[3] not in str(used.payload)
    again = app.test_client()
    sign_in(again, "alice@example.com")
    assert b"That code is not right" in post(again, "/sign-in/code", code=codes[3]).data


def test_the_code_step_needs_the_password_step_first(client, users):
    response = client.get("/sign-in/code")
    assert response.status_code == 302 and response.location.endswith("/sign-in")


def test_code_guessing_is_rate_limited(app, client, session, users):
    sign_in(client, "alice@example.com")
    _enable(client)
    other = app.test_client()
    sign_in(other, "alice@example.com")
    for _ in range(5):
        post(other, "/sign-in/code", code="000000")
    limited = post(other, "/sign-in/code", code="000000")
    assert limited.status_code == 429 and b"try again in" in limited.data


def test_disabling_needs_the_password_or_a_code(client, session, users):
    alice, _bob = users
    sign_in(client, "alice@example.com")
    _enable(client)
    wrong = post(client, "/security/two-factor/disable", "/security",
                 **{"disable-password": "not it at all"})
    assert b"Neither the password nor the code is right" in wrong.data
    session.refresh(alice)
    assert alice.totp_enabled
    response = post(client, "/security/two-factor/disable", "/security",
                    **{"disable-password": PASSWORD})
    assert response.status_code == 302
    session.refresh(alice)
    assert not alice.totp_enabled
    assert session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode)) == 0
    assert events_of(session, "auth.totp_disabled", str(alice.id))


def test_an_administrator_without_totp_is_sent_to_set_it_up(client, session, users):
    admin = make_user(session, email="admin@example.com", role=Role.ADMIN)
    assert totp_service.totp_required(admin)
    assert not totp_service.totp_required(users[0])
    sign_in(client, "admin@example.com")
    response = client.get("/ops")
    assert response.status_code == 302 and response.location.endswith("/security/two-factor")
    assert client.get("/security").status_code == 302
    page = client.get("/security/two-factor").data.decode()
    secret = SECRET_RE.search(page).group(1)
    post(client, "/security/two-factor", "/security/two-factor", code=_code(secret, -1))
    assert client.get("/security").status_code == 200
    # An administrator cannot turn it off.
    session.refresh(admin)
    post(client, "/security/two-factor/disable", "/security", **{"disable-password": PASSWORD})
    session.refresh(admin)
    assert admin.totp_enabled


def test_totp_forms_refuse_posts_without_csrf_token(client, users):
    sign_in(client, "alice@example.com")
    assert client.post("/security/two-factor", data={"code": "123456"}).status_code == 400
    assert client.post("/security/two-factor/disable",
                       data={"disable-password": PASSWORD}).status_code == 400
    assert csrf_token(client, "/security")
