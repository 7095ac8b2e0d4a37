"""Staff sign-in through an OpenID Connect provider (a real one on loopback, tests/peers)."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests
import sqlalchemy as sa

from portal.auth import oidc as oidc_client
from portal.models import Role, SignInSession, StaffIdentity, User
from portal.models.base import utcnow
from portal.oidc_settings import OidcSettings
from tests.factories import make_customer, make_organisation, make_user
from tests.peers.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider, oidc_provider
from tests.portal.auth.helpers import events_of, post
from tests.totp_codes import previous_step_code

__all__ = ["oidc_provider"]  # the fixture


@pytest.fixture
def provider(app, monkeypatch, oidc_provider: OidcProvider) -> OidcProvider:
    """The app configured for the local provider, with a role map on the groups claim."""
    settings = app.config["HERALD"]
    oidc = OidcSettings(issuer=oidc_provider.issuer, client_id=CLIENT_ID,
                        client_secret=CLIENT_SECRET, provider_name="Example SSO",
                        role_claim="groups",
                        role_map=(("herald-admins", Role.ADMIN),
                                  ("billing", Role.BILLING_OPERATOR)))
    monkeypatch.setitem(app.config, "HERALD", replace(settings, oidc=oidc))
    oidc_provider.redirect_uris = [f"{settings.public_url}/sign-in/oidc/callback"]
    oidc_client.forget_cached()
    yield oidc_provider
    oidc_client.forget_cached()


def set_oidc(app, monkeypatch, **changes) -> None:
    settings = app.config["HERALD"]
    monkeypatch.setitem(app.config, "HERALD",
                        replace(settings, oidc=replace(settings.oidc, **changes)))


@pytest.fixture
def staff(session):
    org = make_organisation(session)
    alice = make_customer(session, org, "C1", name="Alice")
    make_user(session, email="alice@example.com", customer=alice)
    return make_user(session, email="ops@example.com", role=Role.BILLING_OPERATOR)


def round_trip(client, next_url: str | None = None):
    """Start at Herald, let the provider answer (over HTTP), come back; Herald's answer."""
    start = client.get("/sign-in/oidc" + (f"?next={next_url}" if next_url else ""))
    assert start.status_code == 302, start.data[:300]
    at_provider = requests.get(start.location, allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["Location"])
    return client.get(f"{back.path}?{back.query}")


def signed_in(client) -> bool:
    return client.get("/ops").status_code == 200


def test_the_sign_in_page_offers_the_provider_only_when_configured(client, app, provider,
                                                                  monkeypatch):
    assert b"Staff: sign in with Example SSO" in client.get("/sign-in").data
    monkeypatch.setitem(app.config, "HERALD", replace(app.config["HERALD"], oidc=None))
    assert b"Staff: sign in with" not in client.get("/sign-in").data
    assert client.get("/sign-in/oidc").status_code == 404
    assert client.get("/sign-in/oidc/callback?code=x&state=y").status_code == 404


def test_the_authorization_request_carries_state_nonce_and_an_s256_pkce_challenge(
        client, provider):
    start = client.get("/sign-in/oidc")
    params = {k: v[0] for k, v in parse_qs(urlsplit(start.location).query).items()}
    assert start.location.startswith(f"{provider.issuer}/authorize?")
    assert params["response_type"] == "code" and params["client_id"] == CLIENT_ID
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32
    assert "openid" in params["scope"].split()


def test_an_existing_staff_member_signs_in_and_the_identity_is_linked(client, session, staff,
                                                                    provider):
    response = round_trip(client, next_url="/ops/runs")
    assert response.status_code == 302 and response.location.endswith("/ops/runs")
    assert signed_in(client)
    [identity] = session.scalars(sa.select(StaffIdentity).where(
        StaffIdentity.user_id == staff.id)).all()
    assert (identity.issuer, identity.subject) == (provider.issuer, "u-1001")
    assert events_of(session, "auth.identity_linked", str(staff.id))
    [row] = session.scalars(sa.select(SignInSession).where(
        SignInSession.user_id == staff.id)).all()
    assert row.method == "oidc"
    [exchange] = provider.token_requests
    assert exchange["basic"] and "client_secret" not in exchange["form"]
    assert exchange["form"]["code_verifier"]

    # The link, not the email, finds the account next time: a new address changes nothing.
    provider.person = {**provider.person, "email": "olivia@elsewhere.example"}
    other = client.application.test_client()
    assert round_trip(other).status_code == 302 and signed_in(other)
    assert session.scalar(sa.select(sa.func.count(StaffIdentity.id))) == 1


@pytest.mark.parametrize(("switch", "value", "reason"), [
    ("nonce_override", "a-nonce-from-another-sign-in", "nonce"),
    ("audience", "some-other-client", "aud"),
    ("audience", [CLIENT_ID, "some-other-client"], "azp"),
    ("expires_in", -120, "exp"),
    ("sign_with_unpublished_key", True, "ID token refused"),
])
def test_an_id_token_that_is_not_for_this_sign_in_is_refused(client, session, staff, provider,
                                                             switch, value, reason):
    setattr(provider, switch, value)
    response = round_trip(client)
    assert response.status_code == 302 and response.location.endswith("/sign-in")
    assert "Signing in with Example SSO did not work" in client.get("/sign-in").data.decode()
    assert not signed_in(client)
    failed = events_of(session, "auth.sign_in_failed", "identity-provider")
    assert failed and reason in failed[-1].payload["reason"]
    assert session.scalar(sa.select(sa.func.count(StaffIdentity.id))) == 0


def test_a_rotated_signing_key_is_fetched_again(client, staff, provider):
    assert round_trip(client).status_code == 302 and signed_in(client)
    provider.rotate_key()
    other = client.application.test_client()
    assert round_trip(other).status_code == 302 and signed_in(other)


def test_a_forged_state_or_a_replayed_return_is_refused(app, client, session, staff, provider):
    start = client.get("/sign-in/oidc")
    back = urlsplit(requests.get(start.location, allow_redirects=False,
                                 timeout=10).headers["Location"])
    params = {k: v[0] for k, v in parse_qs(back.query).items()}
    forged = client.get(f"{back.path}?code={params['code']}&state=forged")
    assert forged.location.endswith("/sign-in") and not signed_in(client)
    # The pending sign-in is used up by any return: the genuine one cannot follow.
    again = client.get(f"{back.path}?{back.query}")
    assert again.location.endswith("/sign-in") and not signed_in(client)
    # Another browser cannot bring this browser's code back either.
    stranger = app.test_client()
    assert stranger.get(f"{back.path}?{back.query}").location.endswith("/sign-in")
    assert not signed_in(stranger)


def test_the_provider_refusing_is_a_calm_message(client, staff, provider):
    client.get("/sign-in/oidc")
    with client.session_transaction() as flask_session:
        state = flask_session["oidc_pending"]["state"]
    response = client.get(f"/sign-in/oidc/callback?error=access_denied&state={state}")
    assert response.location.endswith("/sign-in") and not signed_in(client)


def test_an_unknown_person_is_refused_when_auto_provisioning_is_off(client, session, staff,
                                                                   provider):
    provider.person = {"sub": "u-2002", "email": "stranger@example.com", "email_verified": True,
                       "groups": ["billing"]}
    response = round_trip(client)
    assert response.location.endswith("/sign-in") and not signed_in(client)
    assert "Herald has no active staff account for you" in client.get("/sign-in").data.decode()
    assert session.scalar(sa.select(User).where(User.email == "stranger@example.com")) is None
    failed = events_of(session, "auth.sign_in_failed", "identity-provider")
    assert failed[-1].payload["reason"] == "no staff account"


def test_auto_provisioning_creates_the_account_with_the_mapped_role(app, client, session,
                                                                    provider, monkeypatch):
    set_oidc(app, monkeypatch, auto_provision=True)
    provider.person = {"sub": "u-3003", "email": "New.Person@Example.com",
                       "email_verified": True, "name": "New Person",
                       "groups": ["staff", "billing"]}
    assert round_trip(client).status_code == 302 and signed_in(client)
    user = session.scalars(sa.select(User).where(User.email == "new.person@example.com")).one()
    assert user.role is Role.BILLING_OPERATOR and user.password_hash is None
    assert user.name == "New Person"
    assert events_of(session, "staff.provisioned", str(user.id))[0].payload["role"] == \
        "billing_operator"

    provider.person = {"sub": "u-4004", "email": "nogroup@example.com", "email_verified": True,
                       "groups": ["staff"]}
    other = app.test_client()
    assert round_trip(other).location.endswith("/sign-in") and not signed_in(other)
    assert session.scalar(sa.select(User).where(User.email == "nogroup@example.com")) is None


def test_customers_unverified_emails_and_deactivated_staff_are_refused(client, session, staff,
                                                                      provider, app):
    provider.person = {"sub": "u-5005", "email": "alice@example.com", "email_verified": True}
    assert round_trip(client).location.endswith("/sign-in")
    provider.person = {"sub": "u-6006", "email": "ops@example.com", "email_verified": False}
    assert round_trip(client).location.endswith("/sign-in")
    assert not signed_in(client)
    assert session.scalar(sa.select(sa.func.count(StaffIdentity.id))) == 0

    provider.person = {"sub": "u-1001", "email": "ops@example.com", "email_verified": True}
    assert round_trip(client).status_code == 302 and signed_in(client)
    staff.active = False
    session.flush()
    other = app.test_client()
    assert round_trip(other).location.endswith("/sign-in") and not signed_in(other)
    reasons = [e.payload["reason"] for e in events_of(session, "auth.sign_in_failed",
                                                      "identity-provider")]
    assert reasons == ["email belongs to a customer", "no verified email", "account deactivated"]


def _admin(session, *, totp: bool) -> User:
    admin = make_user(session, email="admin@example.com", role=Role.ADMIN)
    if totp:
        admin.totp_secret = pyotp.random_base32()
        admin.totp_enabled_at = utcnow()
    session.flush()
    return admin


def test_an_administrator_gives_the_totp_code_unless_the_provider_asserts_mfa(
        app, client, session, provider):
    admin = _admin(session, totp=True)
    provider.person = {"sub": "a-1", "email": "admin@example.com", "email_verified": True,
                       "amr": ["pwd"]}
    response = round_trip(client)
    assert response.location.endswith("/sign-in/code") and not signed_in(client)
    code = previous_step_code(admin.totp_secret)
    assert post(client, "/sign-in/code", code=code).status_code == 302
    assert signed_in(client)

    provider.person = {**provider.person, "amr": ["pwd", "mfa"]}
    other = app.test_client()
    response = round_trip(other)
    assert response.location.endswith("/ops") and signed_in(other)
    assert events_of(session, "auth.provider_mfa_accepted", str(admin.id))


def test_an_administrator_without_totp_must_set_it_up_unless_the_provider_asserts_mfa(
        app, client, session, provider, monkeypatch):
    _admin(session, totp=False)
    provider.person = {"sub": "a-2", "email": "admin@example.com", "email_verified": True,
                       "amr": ["mfa"]}
    assert round_trip(client).status_code == 302
    assert signed_in(client)
    assert client.get("/ops/staff").status_code == 200

    # A provider whose "mfa" is not trusted here (OIDC_MFA_AMR names other methods).
    set_oidc(app, monkeypatch, mfa_amr=frozenset({"hwk"}))
    other = app.test_client()
    assert round_trip(other).status_code == 302
    page = other.get("/ops")
    assert page.status_code == 302 and page.location.endswith("/security/two-factor")
