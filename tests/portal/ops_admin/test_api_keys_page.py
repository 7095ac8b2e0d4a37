"""API keys from the ops console: create (shown once), list with last use, revoke; admins only."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from portal.models import ApiKey, Role
from tests.factories import make_user
from tests.portal.auth.helpers import events_of, sign_in
from tests.portal.ops_admin.helpers import make_admin, page_token, sign_in_admin

SECRET_RE = re.compile(r"<code>(hk_[0-9a-f]{12}_[A-Za-z0-9_-]+)</code>")


@pytest.fixture
def admin(session):
    make_user(session, email="ops@example.com", role=Role.BILLING_OPERATOR)
    make_user(session, email="auditor@example.com", role=Role.AUDITOR)
    return make_admin(session)


def _create(client, name="call centre", scopes=("read", "support"), rate_limit=""):
    token = page_token(client, "/ops/api-keys")
    return client.post("/ops/api-keys", data={
        "csrf_token": token, "key-name": name, "key-scopes": list(scopes),
        "key-rate_limit": rate_limit})


def test_a_key_is_shown_once_works_with_its_scopes_and_rate_limit_then_is_revoked(
        client, session, admin):
    sign_in_admin(client, admin)
    response = _create(client, rate_limit="2")
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    secret = SECRET_RE.search(response.data.decode()).group(1)
    assert 'value="call centre"' not in response.data.decode()  # a blank form for the next
    session.expire_all()
    key = session.scalars(sa.select(ApiKey).where(ApiKey.name == "call centre")).one()
    assert key.scopes == "read support" and key.rate_limit == 2
    assert secret not in key.key_sha256 and secret.split("_")[1] == key.prefix
    [created] = events_of(session, "api_key.created", str(key.id))
    assert created.actor.startswith(f"staff:{admin.id}:admin:")
    assert created.payload["rate_limit"] == 2 and secret not in str(created.payload)
    listing = client.get("/ops/api-keys").data.decode()
    assert secret not in listing and key.prefix in listing and "Never" in listing

    api = client.application.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.get("/api/v1/customers?email=x@example.com", headers=headers).status_code == 200
    assert api.post("/api/v1/payments", json={}, headers=headers).status_code == 403  # scope
    assert api.get("/api/v1/customers?email=x@example.com", headers=headers).status_code == 200
    limited = api.get("/api/v1/customers?email=x@example.com", headers=headers)
    assert limited.status_code == 429 and "more than 2 requests" in limited.json["error"][
        "message"]
    session.expire_all()
    assert session.get(ApiKey, key.id).last_used_at is not None
    assert "Never" not in client.get("/ops/api-keys").data.decode().split("<tbody>")[1]

    token = page_token(client, "/ops/api-keys")
    revoked = client.post(f"/ops/api-keys/{key.id}/revoke", data={"csrf_token": token},
                          follow_redirects=True)
    assert "is revoked" in revoked.data.decode()
    assert api.get("/api/v1/customers?email=x@example.com", headers=headers).status_code == 401
    [event] = events_of(session, "api_key.revoked", str(key.id))
    assert event.actor.startswith(f"staff:{admin.id}:")


def test_a_key_without_its_own_limit_uses_the_installation_default(client, session, admin):
    sign_in_admin(client, admin)
    assert _create(client, name="crm", scopes=("read",)).status_code == 201
    session.expire_all()
    key = session.scalars(sa.select(ApiKey).where(ApiKey.name == "crm")).one()
    assert key.rate_limit is None
    assert "default (600)" in client.get("/ops/api-keys").data.decode()


def test_bad_input_is_refused_with_the_reason(client, session, admin):
    sign_in_admin(client, admin)
    assert _create(client, name="dup").status_code == 201
    duplicate = _create(client, name="dup")
    assert duplicate.status_code == 400 and "A key with that name exists" in \
        duplicate.data.decode()
    assert _create(client, name="none", scopes=()).status_code == 400
    assert _create(client, name="zero", rate_limit="0").status_code == 400
    assert _create(client, name="bad", scopes=("everything",)).status_code == 400
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count(ApiKey.id))) == 1


@pytest.mark.parametrize("email", ["ops@example.com", "auditor@example.com"])
def test_other_staff_cannot_see_create_or_revoke_keys(client, session, admin, email):
    sign_in(client, email)
    assert client.get("/ops/api-keys").status_code == 403
    token = page_token(client, "/security")
    assert client.post("/ops/api-keys", data={
        "csrf_token": token, "key-name": "sneaky", "key-scopes": ["read"]}).status_code == 403
    key = ApiKey(name="existing", prefix="0123456789ab", key_sha256="0" * 64, scopes="read",
                 created_by="test")
    session.add(key)
    session.flush()
    assert client.post(f"/ops/api-keys/{key.id}/revoke",
                       data={"csrf_token": token}).status_code == 403
    session.expire_all()
    assert session.get(ApiKey, key.id).revoked_at is None
    assert session.scalar(sa.select(ApiKey).where(ApiKey.name == "sneaky")) is None


def test_the_command_line_sets_a_rate_limit_too(runner, session):
    result = runner.invoke(args=["api-keys", "create", "--name", "billing system",
                                 "--scope", "invoices:write", "--rate-limit", "50"])
    assert result.exit_code == 0, result.output
    session.expire_all()
    assert session.scalars(sa.select(ApiKey.rate_limit).where(
        ApiKey.name == "billing system")).one() == 50
    listing = runner.invoke(args=["api-keys", "list"]).output
    assert "billing system  [invoices:write]  limit 50" in listing
    refused = runner.invoke(args=["api-keys", "create", "--name", "zero", "--scope", "read",
                                  "--rate-limit", "0"])
    assert refused.exit_code != 0
