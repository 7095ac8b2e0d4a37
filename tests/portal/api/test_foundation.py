"""The API's foundation: keys and scopes, errors, request IDs, rate limits, the CLI, OpenAPI."""

from __future__ import annotations

import dataclasses
import re

import sqlalchemy as sa

from distribution.events import Event
from portal.api.spec import OPERATIONS
from portal.models import ApiKey
from tests.portal.api.conftest import assert_error


def test_requests_need_a_valid_bearer_key(client, make_api):
    assert_error(client.get("/api/v1/customers?email=x@example.com"), 401, "unauthenticated",
                 "Authorization")
    response = client.get("/api/v1/customers?email=x@example.com",
                          headers={"Authorization": "Bearer hk_000000000000_wrong"})
    assert_error(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    good = make_api(["read"])
    wrong_secret = good.key[:-4] + "AAAA"
    assert_error(client.get("/api/v1/customers?email=x@example.com",
                            headers={"Authorization": f"Bearer {wrong_secret}"}), 401)
    assert good.get("/customers?email=x@example.com").status_code == 200


def test_a_key_without_the_scope_is_refused_and_a_revoked_key_stops_working(
        make_api, runner, session):
    reader = make_api(["read"], name="reader")
    error = assert_error(reader.post("/payments", {"amount": "1.00", "provider_reference": "x"}),
                         403, "missing_scope")
    assert "payments:write" in error["message"]
    result = runner.invoke(args=["api-keys", "revoke", "reader"])
    assert result.exit_code == 0, result.output
    assert_error(reader.get("/customers?email=x@example.com"), 401)


def test_last_used_time_is_kept(make_api, session):
    api = make_api(["read"], name="timed")
    key = session.scalars(sa.select(ApiKey).where(ApiKey.name == "timed")).one()
    assert key.last_used_at is None
    api.get("/customers?email=x@example.com")
    assert session.scalar(sa.select(ApiKey.last_used_at).where(ApiKey.id == key.id)) \
        is not None


def test_cli_creates_a_key_shown_once_and_stored_hashed(runner, session, client):
    result = runner.invoke(args=["api-keys", "create", "--name", "call centre",
                                 "--scope", "read", "--scope", "support"])
    assert result.exit_code == 0, result.output
    secret = re.search(r"^(hk_\S+)$", result.output, re.M).group(1)
    key = session.scalars(sa.select(ApiKey).where(ApiKey.name == "call centre")).one()
    assert key.scopes == "read support"
    assert secret not in (key.key_sha256, key.prefix) and len(key.key_sha256) == 64
    event = session.scalars(sa.select(Event).where(Event.kind == "api_key.created")).all()[-1]
    assert secret not in str(event.payload)
    listed = runner.invoke(args=["api-keys", "list"])
    assert "call centre" in listed.output and "never" in listed.output
    assert secret not in listed.output
    ok = client.get("/api/v1/customers?email=x@example.com",
                    headers={"Authorization": f"Bearer {secret}"})
    assert ok.status_code == 200
    assert "last used never" not in runner.invoke(args=["api-keys", "list"]).output
    bad = runner.invoke(args=["api-keys", "create", "--name", "x", "--scope", "everything"])
    assert bad.exit_code != 0 and "everything" in bad.output


def test_errors_have_one_shape_for_404_405_415_and_422(api, client):
    assert_error(client.get("/api/v1/no-such-thing"), 404, "not_found")
    response = client.delete("/api/v1/invoices")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
    assert_error(api.get("/customers/999999"), 404, "not_found", "customer_id")
    assert_error(api.get("/invoices?limit=abc"), 422, "invalid_type", "limit")
    assert_error(api.post("/payments", {"amount": "1.00"}), 422, "missing_field",
                 "provider_reference")
    assert_error(api.post("/payments", {"amount": "1.00", "provider_reference": "p",
                                        "colour": "red"}), 422, "unknown_field", "colour")
    response = api.client.post("/api/v1/payments", data="{not json",
                               headers=api.headers({"Content-Type": "application/json"}))
    assert_error(response, 400, "invalid_json")
    response = api.client.post("/api/v1/payments", data="amount=1", headers=api.headers(
        {"Content-Type": "application/x-www-form-urlencoded"}))
    assert_error(response, 415)


def test_a_500_is_json_without_internals(api, session, monkeypatch):
    from portal.api import customers
    from tests.factories import make_customer, make_organisation

    customer = make_customer(session, make_organisation(session))

    def broken(_customer):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(customers, "customer_json", broken)
    response = api.get(f"/customers/{customer.id}")
    error = assert_error(response, 500, "internal_error")
    assert "secret internals" not in response.get_data(as_text=True)
    assert error["request_id"]


def test_request_id_is_echoed_or_generated(api):
    response = api.get("/customers?email=x@example.com", headers={"X-Request-ID": "call-42.a"})
    assert response.headers["X-Request-ID"] == "call-42.a"
    generated = api.get("/customers?email=x@example.com",
                        headers={"X-Request-ID": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{24}", generated.headers["X-Request-ID"])


def test_rate_limit_answers_429_with_retry_after(make_api, app, monkeypatch):
    monkeypatch.setitem(app.config, "HERALD", dataclasses.replace(
        app.config["HERALD"], api_rate_limit=3, api_rate_window_seconds=3600))
    api = make_api(["read"])
    other = make_api(["read"])
    for _ in range(3):
        assert api.get("/customers?email=x@example.com").status_code == 200
    response = api.get("/customers?email=x@example.com")
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 3600
    assert other.get("/customers?email=x@example.com").status_code == 200  # per key


def test_every_route_is_documented_and_every_documented_path_exists(app, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, methods in spec["paths"].items()
                  for method in methods}
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            served.add((path, method))
    assert served == documented
    assert {op.endpoint for op in OPERATIONS.values()} <= set(app.view_functions)
    for methods in spec["paths"].values():
        for op in methods.values():
            assert op["responses"] and op["summary"]


def test_openapi_document_is_valid_openapi_3_1(client):
    from jsonschema import Draft202012Validator

    spec = client.get("/api/v1/openapi.json").get_json()
    for schema in spec["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    from openapi_spec_validator import validate

    validate(spec)  # raises on anything OpenAPI 3.1 does not allow


def test_docs_page_renders_every_operation_server_side(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<script>" not in page and " style=" not in page and "onclick" not in page
    for op in OPERATIONS.values():
        assert op.path in page
