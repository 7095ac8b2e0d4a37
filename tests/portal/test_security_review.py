"""The security review's targeted checks not covered elsewhere.

Session fixation, open redirects through ``next``, framing refused on every page, passwords
stored with Argon2id, and no password, token or key in the logs. (Token hashing is proved
where each token is made: test_pay_links, test_signing, test_auth_links, api/test_foundation;
CSRF and route access in test_route_security.)
"""

from __future__ import annotations

import logging
import re

import pytest
import sqlalchemy as sa

from portal.models import Invoice, User
from portal.pay.links import issue_link
from tests.peers import smtp as smtp_peers
from tests.peers.smtp import SmtpPeer
from tests.portal.auth.helpers import (
    PASSWORD,
    csrf_token,
    deliver,
    link_in,
    people,
    post,
    sign_in,
    take_queued_mail,
)

smtp_peer = smtp_peers.smtp_peer
EVIL = ["//evil.example/", "https://evil.example/", "/\\evil.example", "\\\\evil.example",
        "/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "///evil.example",
        "http:evil.example", "javascript:alert(1)"]


@pytest.fixture
def users(session):
    return people(session)


def _cookie(app, client) -> str | None:
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    return cookie.value if cookie else None


def test_signing_in_gives_a_new_session_and_a_planted_cookie_stays_signed_out(app, client,
                                                                               users):
    client.get("/sign-in")
    planted = _cookie(app, client)
    assert planted, "the sign-in page sets a session cookie (for its CSRF token)"
    assert sign_in(client, "alice@example.com").status_code == 302
    signed_in = _cookie(app, client)
    assert signed_in and signed_in != planted
    # Someone who planted the pre-sign-in cookie in the victim's browser gains nothing.
    attacker = app.test_client()
    attacker.set_cookie(app.config.get("SESSION_COOKIE_NAME", "session"), planted)
    assert attacker.get("/invoices").status_code == 302
    # And a copy of the signed-in cookie dies with the sign-out.
    thief = app.test_client()
    thief.set_cookie(app.config.get("SESSION_COOKIE_NAME", "session"), signed_in)
    assert thief.get("/invoices").status_code == 200
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/invoices")})
    assert thief.get("/invoices").status_code == 302


@pytest.mark.parametrize("target", EVIL)
def test_sign_in_next_only_returns_to_a_path_on_this_site(client, users, target):
    response = client.post("/sign-in", query_string={"next": target}, data={
        "csrf_token": csrf_token(client), "email": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response.location == "/invoices", response.location


def test_sign_in_next_keeps_a_path_on_this_site(client, users):
    response = client.post("/sign-in", query_string={"next": "/invoices/INV-A1"}, data={
        "csrf_token": csrf_token(client), "email": "alice@example.com", "password": PASSWORD})
    assert response.location == "/invoices/INV-A1"


@pytest.mark.parametrize("target", EVIL)
def test_language_switch_only_returns_to_a_path_on_this_site(client, users, target):
    response = client.post("/language", data={"csrf_token": csrf_token(client),
                                              "language": "nl", "next": target})
    assert response.status_code == 303
    assert response.location == "/", response.location


def test_every_page_refuses_to_be_framed(app, client, users):
    """Clickjacking: every HTML answer, to anyone, says frame-ancestors 'none' and DENY."""
    gets = [rule for rule in app.url_map.iter_rules()
            if "GET" in rule.methods and not rule.arguments]
    callers = {"anonymous": app.test_client(), "customer": app.test_client(),
               "operator": app.test_client()}
    sign_in(callers["customer"], "alice@example.com")
    sign_in(callers["operator"], "ops@example.com")
    wrong, pages = [], 0
    for name, caller in callers.items():
        for rule in gets:
            response = caller.get(rule.rule)
            if response.mimetype != "text/html":
                continue
            pages += 1
            csp = response.headers.get("Content-Security-Policy", "")
            if "frame-ancestors 'none'" not in csp or \
                    response.headers.get("X-Frame-Options") != "DENY":
                wrong.append(f"{name} GET {rule.rule}")
    assert pages > 20 and not wrong, wrong


def test_passwords_are_stored_with_argon2id(app, client, session, users,
                                           smtp_peer: SmtpPeer):
    password = "a registration password"
    take_queued_mail(app)
    response = post(client, "/register", account_number="C1", invoice_number="INV-A1",
                    invoice_total="120.15", name="Alice Two", email="second@alice.example")
    assert response.status_code == 302
    [token_id] = take_queued_mail(app)
    deliver(app, smtp_peer, token_id)
    token = link_in(smtp_peer.messages[-1], "/register/")
    response = post(client, f"/register/{token}", password=password, confirm=password)
    assert response.status_code == 302
    session.expire_all()
    row = session.execute(sa.select(User.__table__).where(
        User.email == "second@alice.example")).one()
    assert row.password_hash.startswith("$argon2id$")
    assert password not in repr(row)


def test_no_password_token_or_key_reaches_the_logs(app, client, runner, session, users,
                                                   smtp_peer: SmtpPeer, caplog):
    caplog.set_level(logging.DEBUG)
    secrets = [PASSWORD]
    # Sign-in with a password, then a password reset by email.
    assert sign_in(app.test_client(), "alice@example.com").status_code == 302
    take_queued_mail(app)
    post(client, "/password/forgot", email="alice@example.com")
    [token_id] = take_queued_mail(app)
    deliver(app, smtp_peer, token_id)
    reset = link_in(smtp_peer.messages[-1], "/password/reset/")
    new_password = "the new long password"
    done = post(client, f"/password/reset/{reset}", password=new_password,
                confirm=new_password)
    assert done.status_code == 302
    secrets += [reset, new_password]
    # An API key made on the command line, used; a customer app token from the password.
    made = runner.invoke(args=["api-keys", "create", "--name", "logs", "--scope", "read"])
    key = re.search(r"^(hk_\S+)$", made.output, re.M).group(1)
    assert client.get("/api/v1/invoices", headers={
        "Authorization": f"Bearer {key}"}).status_code == 200
    app_token = client.post("/api/v1/session", json={
        "email": "alice@example.com", "password": new_password}).get_json()["token"]
    secrets += [key, app_token]
    # A pay link opened.
    invoice = session.scalars(sa.select(Invoice).where(Invoice.number == "INV-A1")).one()
    _link, pay_token = issue_link(session, invoice, days=30, purpose="operator", actor="test")
    session.flush()
    assert app.test_client().get(f"/pay/t/{pay_token}").status_code in (200, 302, 303)
    secrets.append(pay_token)

    assert caplog.records, "logging was captured"
    # aiosmtpd's "mail.log" is the test SMTP peer (the receiving server), not Herald.
    records = [record for record in caplog.records if not record.name.startswith("mail.log")]
    assert records, "Herald logged nothing at all: the check would prove nothing"
    leaked = [f"{secret[:6]}... in {record.name}: {record.getMessage()[:300]}"
              for secret in secrets for record in records
              if secret in f"{record.getMessage()} {record.__dict__!r}"]
    assert not leaked, f"secrets in the logs: {leaked}"
