"""Staff link their own account to the identity provider, and unlink it; administrators see
and remove links. Against the real local provider on loopback (tests/peers)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa

from portal import create_app
from portal.auth.passwords import hash_password
from portal.models import Role, StaffIdentity
from portal.security_headers import content_security_policy
from tests.factories import make_customer, make_organisation, make_user
from tests.peers.oidc_provider import OidcProvider, oidc_provider
from tests.portal.auth.helpers import PASSWORD, csrf_token, events_of, post, sign_in
from tests.portal.auth.test_oidc import provider, round_trip, signed_in
from tests.portal.ops_admin.helpers import make_admin, sign_in_admin

__all__ = ["oidc_provider", "provider"]  # the fixtures

# The person at the provider: an address Herald does not know, so only a link can sign in.
PERSON = {"sub": "u-7007", "email": "olivia@corp.example", "email_verified": True,
          "name": "Olivia Ops"}


@pytest.fixture
def ops(session, provider: OidcProvider):
    """A billing operator with a password; the provider signs in PERSON."""
    org = make_organisation(session)
    make_user(session, email="alice@example.com",
              customer=make_customer(session, org, "C1", name="Alice"))
    provider.person = dict(PERSON)
    return make_user(session, email="ops@example.com", role=Role.BILLING_OPERATOR)


def start_link(client, password: str = PASSWORD):
    """Give the current password and press "Link sign-in with ..." on the Security page;
    Herald's redirect to the provider."""
    response = post(client, "/security/identity-provider/link", "/security", password=password)
    assert response.status_code == 302, response.data[:300]
    return response


def link_round_trip(client):
    """Link, let the provider answer (over HTTP), come back; Herald's answer."""
    at_provider = requests.get(start_link(client).location, allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["Location"])
    return client.get(f"{back.path}?{back.query}")


def identities(session) -> list[tuple[int, str, str]]:
    session.expire_all()
    return [(i.user_id, i.issuer, i.subject) for i in session.scalars(
        sa.select(StaffIdentity).order_by(StaffIdentity.id))]


def test_a_staff_member_links_their_account_and_then_signs_in_with_it(app, client, session,
                                                                     ops, provider):
    sign_in(client, ops.email)
    page = client.get("/security").data.decode()
    assert "Link sign-in with Example SSO" in page
    # Before the link the provider's person is nobody here (unknown email, no provisioning).
    stranger = app.test_client()
    assert round_trip(stranger).location.endswith("/sign-in") and not signed_in(stranger)

    start = start_link(client)
    params = {k: v[0] for k, v in parse_qs(urlsplit(start.location).query).items()}
    assert start.location.startswith(f"{provider.issuer}/authorize?")
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32
    at_provider = requests.get(start.location, allow_redirects=False, timeout=10)
    back = urlsplit(at_provider.headers["Location"])
    response = client.get(f"{back.path}?{back.query}")

    assert response.status_code == 302 and response.location.endswith("/security")
    page = client.get("/security").data.decode()
    assert "Linked: you can now sign in with Example SSO." in page
    assert "olivia@corp.example" in page and "Link sign-in with" not in page
    assert identities(session) == [(ops.id, provider.issuer, "u-7007")]
    [event] = events_of(session, "auth.identity_linked", str(ops.id))
    assert event.actor == f"staff:{ops.id}:billing_operator:ops@example.com"
    assert event.payload["how"] == "linked_by_user" and event.payload["subject"] == "u-7007"
    assert provider.token_requests[-1]["form"]["code_verifier"]  # PKCE, as for a sign-in

    # Another browser signs in through the provider as this account: the link finds it.
    other = app.test_client()
    assert round_trip(other).status_code == 302 and signed_in(other)
    assert session.scalar(sa.select(sa.func.count(StaffIdentity.id))) == 1


def test_linking_asks_for_the_current_password_first(client, session, ops, provider):
    sign_in(client, ops.email)
    page = client.get("/security").data.decode()
    assert 'name="password"' in page and 'autocomplete="current-password"' in page

    for wrong in ("not my password", ""):
        response = start_link(client, password=wrong)
        assert response.location.endswith("/security")  # never to the provider
    assert "That is not your current password." in client.get("/security").data.decode()
    assert provider.token_requests == [] and identities(session) == []
    failed = events_of(session, "auth.identity_link_failed", str(ops.id))
    assert [e.payload["reason"] for e in failed] == ["current password not given"] * 2

    assert start_link(client).location.startswith(f"{provider.issuer}/authorize?")


def test_an_identity_linked_to_another_account_is_refused(client, session, ops, provider):
    colleague = make_user(session, email="colleague@example.com", role=Role.SUPPORT_AGENT)
    session.add(StaffIdentity(user_id=colleague.id, issuer=provider.issuer, subject="u-7007"))
    session.flush()
    sign_in(client, ops.email)

    response = link_round_trip(client)

    assert response.location.endswith("/security")
    assert ("That Example SSO account is already linked to another Herald account."
            in client.get("/security").data.decode())
    assert identities(session) == [(colleague.id, provider.issuer, "u-7007")]
    assert not events_of(session, "auth.identity_linked", str(ops.id))
    [failed] = events_of(session, "auth.identity_link_failed", str(ops.id))
    assert failed.payload["reason"] == "linked_elsewhere"
    assert failed.actor.startswith(f"staff:{ops.id}:")


def test_a_second_identity_at_the_same_provider_is_refused(client, session, ops, provider):
    sign_in(client, ops.email)
    assert link_round_trip(client).location.endswith("/security")
    provider.person = {**PERSON, "sub": "u-8008"}

    link_round_trip(client)

    assert "already linked to another Example SSO account" in client.get("/security").data.decode()
    assert identities(session) == [(ops.id, provider.issuer, "u-7007")]


def test_a_forged_state_or_a_replayed_return_links_nothing(app, client, session, ops, provider):
    sign_in(client, ops.email)
    at_provider = requests.get(start_link(client).location, allow_redirects=False, timeout=10)
    back = urlsplit(at_provider.headers["Location"])
    params = {k: v[0] for k, v in parse_qs(back.query).items()}

    forged = client.get(f"{back.path}?code={params['code']}&state=forged")

    assert forged.location.endswith("/security")
    assert "Linking with Example SSO did not work" in client.get("/security").data.decode()
    [failed] = events_of(session, "auth.identity_link_failed", str(ops.id))
    assert "state does not match" in failed.payload["reason"]
    # The pending link is used up by any return: the genuine one cannot follow.
    assert "/security" not in client.get(f"{back.path}?{back.query}").location
    assert identities(session) == []
    assert len(provider.token_requests) == 0  # the code was never exchanged


def test_linking_is_bound_to_the_account_that_started_it(app, client, session, ops, provider):
    sign_in(client, ops.email)
    at_provider = requests.get(start_link(client).location, allow_redirects=False, timeout=10)
    back = urlsplit(at_provider.headers["Location"])
    # The browser signs out and someone else signs in before the return.
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/security")})
    other = make_user(session, email="other@example.com", role=Role.SUPPORT_AGENT)
    sign_in(client, other.email)

    response = client.get(f"{back.path}?{back.query}")

    assert response.location.endswith("/sign-in")
    assert identities(session) == []


def test_unlinking_needs_another_way_to_sign_in(app, client, session, ops, provider):
    sign_in(client, ops.email)
    link_round_trip(client)
    [identity_id] = session.scalars(sa.select(StaffIdentity.id)).all()

    # Without a password, the only identity cannot be unlinked.
    ops.password_hash = None
    session.flush()
    page = client.get("/security").data.decode()
    assert "This is your only way to sign in" in page and "Unlink this account" not in page
    refused = post(client, f"/security/identity-provider/{identity_id}/unlink", "/security")
    assert refused.location.endswith("/security")
    assert identities(session) == [(ops.id, provider.issuer, "u-7007")]
    assert not events_of(session, "auth.identity_unlinked", str(ops.id))

    # With a password it can.
    ops.password_hash = hash_password(PASSWORD)
    session.flush()
    assert "Unlink this account" in client.get("/security").data.decode()
    response = post(client, f"/security/identity-provider/{identity_id}/unlink", "/security")
    assert response.location.endswith("/security")
    assert "Unlinked" in client.get("/security").data.decode()
    assert identities(session) == []
    [event] = events_of(session, "auth.identity_unlinked", str(ops.id))
    assert event.payload == {"issuer": provider.issuer, "subject": "u-7007",
                             "identity_id": identity_id, "by": "user"}
    assert event.actor.startswith(f"staff:{ops.id}:")
    # The provider no longer signs anyone in as this account.
    other = app.test_client()
    assert round_trip(other).location.endswith("/sign-in") and not signed_in(other)


def test_nobody_unlinks_another_staff_members_identity_from_the_security_page(
        client, session, ops, provider):
    colleague = make_user(session, email="colleague@example.com", role=Role.SUPPORT_AGENT)
    theirs = StaffIdentity(user_id=colleague.id, issuer=provider.issuer, subject="u-9")
    session.add(theirs)
    session.flush()
    sign_in(client, ops.email)

    response = post(client, f"/security/identity-provider/{theirs.id}/unlink", "/security")

    assert response.status_code == 404
    assert identities(session) == [(colleague.id, provider.issuer, "u-9")]


def test_customers_see_no_link_and_may_not_start_one(client, session, ops, provider):
    sign_in(client, "alice@example.com")
    assert "Link sign-in with" not in client.get("/security").data.decode()
    assert post(client, "/security/identity-provider/link", "/security").status_code == 403


def test_an_administrator_sees_links_on_the_staff_page_and_removes_one(
        app, client, session, ops, provider):
    admin = make_admin(session)
    linked = StaffIdentity(user_id=ops.id, issuer=provider.issuer, subject="u-7007",
                           email="olivia@corp.example")
    session.add(linked)
    session.flush()
    through_provider, with_password = app.test_client(), app.test_client()
    assert round_trip(through_provider).status_code == 302 and signed_in(through_provider)
    sign_in(with_password, ops.email)
    assert signed_in(with_password)
    sign_in_admin(client, admin)

    page = client.get("/ops/staff").data.decode()
    assert "Linked identity-provider accounts" in page and "olivia@corp.example" in page
    response = post(client, f"/ops/staff/{ops.id}/identities/{linked.id}/remove", "/ops/staff")

    assert response.status_code == 302 and response.location.endswith("/ops/staff")
    assert "can no longer sign in with the identity-provider account olivia@corp.example" in \
        client.get("/ops/staff").data.decode()
    assert identities(session) == []
    [event] = events_of(session, "auth.identity_unlinked", str(ops.id))
    assert event.payload["by"] == "administrator"
    assert event.actor == f"staff:{admin.id}:admin:admin@example.com"
    # The sessions the provider opened end with the link; the password's stays.
    assert not signed_in(through_provider) and signed_in(with_password)
    [ended] = [e for e in events_of(session, "auth.session_ended", str(ops.id))
               if e.payload["reason"] == "identity_unlinked"]
    assert ended.actor == event.actor
    # A link of another member is not reachable under this member's address.
    again = StaffIdentity(user_id=admin.id, issuer=provider.issuer, subject="a-1")
    session.add(again)
    session.flush()
    wrong = post(client, f"/ops/staff/{ops.id}/identities/{again.id}/remove", "/ops/staff")
    assert wrong.status_code == 404


def test_an_app_built_with_a_provider_lets_the_link_form_redirect_there(tmp_path,
                                                                       monkeypatch):
    # Linking is a form POST answered by a redirect to the provider, which browsers check
    # against the page's form-action.
    config = {"DATABASE_URL": f"sqlite:///{tmp_path}/h.sqlite3",
              "HERALD_INSTANCE_PATH": str(tmp_path)}
    plain = create_app(config)
    assert "form-action 'self';" in content_security_policy(plain)
    monkeypatch.setenv("OIDC_ISSUER", "https://sso.example.com/realms/staff")
    monkeypatch.setenv("OIDC_CLIENT_ID", "herald")
    monkeypatch.setenv("OIDC_CLIENT_SECRET", "secret")
    app = create_app(config)
    assert "form-action 'self' https://sso.example.com;" in content_security_policy(app)
