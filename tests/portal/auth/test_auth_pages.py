"""The Security page's password change, and the getting-in pages' markup rules."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from portal.models import SignInSession
from tests.portal.auth.helpers import PASSWORD, events_of, people, post, sign_in

NEW_PASSWORD = "another long password"


@pytest.fixture
def users(session):
    return people(session)


def test_changing_the_password_signs_out_other_devices_only(app, client, session, users):
    alice, _bob = users
    elsewhere = app.test_client()
    sign_in(elsewhere, "alice@example.com")
    sign_in(client, "alice@example.com")
    wrong = post(client, "/security/password", "/security", **{
        "password-current": "not my password", "password-password": NEW_PASSWORD,
        "password-confirm": NEW_PASSWORD})
    assert wrong.status_code == 200 and b"That is not your current password" in wrong.data
    assert elsewhere.get("/invoices").status_code == 200
    response = post(client, "/security/password", "/security", **{
        "password-current": PASSWORD, "password-password": NEW_PASSWORD,
        "password-confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert client.get("/invoices").status_code == 200
    assert elsewhere.get("/invoices").status_code == 302
    session.expire_all()
    reasons = session.scalars(sa.select(SignInSession.ended_reason).order_by(SignInSession.id))
    assert list(reasons) == ["password_changed", None]
    [event] = events_of(session, "auth.password_changed", str(alice.id))
    assert NEW_PASSWORD not in str(event.payload) and PASSWORD not in str(event.payload)
    assert sign_in(app.test_client(), "alice@example.com", NEW_PASSWORD).status_code == 302


@pytest.mark.parametrize("url", ["/sign-in", "/sign-in/link", "/password/forgot", "/register",
                                 "/security", "/security/two-factor"])
def test_pages_have_no_inline_code_and_every_field_a_label(client, users, url):
    if url.startswith("/security"):
        sign_in(client, "alice@example.com")
    page = client.get(url)
    assert page.status_code == 200
    html = page.data.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert " style=" not in html and " on" + "click=" not in html
    for field_id in re.findall(r'<input [^>]*id="([^"]+)"', html):
        if f'id="{field_id}" name="csrf_token"' in html or 'type="hidden"' in re.search(
                rf'<input [^>]*id="{re.escape(field_id)}"[^>]*>', html).group(0):
            continue
        assert f'for="{field_id}"' in html, f"{url}: no label for {field_id}"
    assert re.search(r"<h1>", html)
