"""Fixtures for the integration API tests: keys with chosen scopes, and a JSON caller."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator
from werkzeug.exceptions import HTTPException

from portal.api.keys import create_key
from portal.api.spec import OPERATIONS, openapi
from tests.portal.test_invoices import billing  # noqa: F401 - the fixture

ALL_SCOPES = ["read", "invoices:write", "payments:write", "customers:write", "support",
              "runs:write", "admin"]


class Api:
    """Calls /api/v1 with a bearer key."""

    def __init__(self, client, key: str | None) -> None:
        self.client, self.key = client, key

    def headers(self, extra: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        headers.update(extra or {})
        return headers

    def get(self, path: str, **kwargs):
        return described(self.client, "GET", path, self.client.get(
            f"/api/v1{path}", headers=self.headers(kwargs.pop("headers", None)), **kwargs))

    def post(self, path: str, json=None, *, key: str | None = None, **kwargs):
        extra = kwargs.pop("headers", None) or {}
        if key is not None:
            extra["Idempotency-Key"] = key
        return described(self.client, "POST", path, self.client.post(
            f"/api/v1{path}", json=json if json is not None else {},
            headers=self.headers(extra), **kwargs))

    def patch(self, path: str, json=None, **kwargs):
        extra = kwargs.pop("headers", None) or {}
        return described(self.client, "PATCH", path, self.client.patch(
            f"/api/v1{path}", json=json or {}, headers=self.headers(extra), **kwargs))

    def delete(self, path: str, _body=None, **kwargs):
        extra = kwargs.pop("headers", None) or {}
        return described(self.client, "DELETE", path, self.client.delete(
            f"/api/v1{path}", headers=self.headers(extra), **kwargs))


def described(client, method: str, path: str, response):
    """``response``, after checking that the OpenAPI description says exactly this can happen.

    Its status must be documented for the operation, and a JSON body must match the
    documented schema: every request the tests make checks the description against the code.
    """
    adapter = client.application.url_map.bind("localhost")
    try:
        endpoint, _ = adapter.match(f"/api/v1{path.split('?')[0]}", method=method)
    except HTTPException:
        return response  # no such route: the error shape is checked by assert_error
    op = OPERATIONS[endpoint]
    spec = openapi()
    documented = spec["paths"][op.path][method.lower()]["responses"]
    assert str(response.status_code) in documented, \
        f"{method} {op.path} answered {response.status_code}, which is not documented"
    content = documented[str(response.status_code)].get("content", {})
    if response.mimetype == "application/json":
        assert "application/json" in content, f"{method} {op.path}: JSON not documented"
        schema = {**content["application/json"]["schema"], "components": spec["components"]}
        Draft202012Validator(schema).validate(response.get_json())
    else:
        assert response.mimetype in content or response.status_code == 204, \
            f"{method} {op.path}: {response.mimetype} not documented"
    return response


@pytest.fixture
def make_api(client, session):
    """``make_api(scopes)``: an Api calling with a new key that has ``scopes``."""
    counter = iter(range(1000))

    def make(scopes=None, name: str | None = None) -> Api:
        _key, secret = create_key(session, name or f"test key {next(counter)}",
                                  list(scopes or ALL_SCOPES), actor="test")
        session.flush()
        return Api(client, secret)

    return make


@pytest.fixture
def api(make_api):
    """An Api whose key has every scope (named 'crm')."""
    return make_api(name="crm")


def assert_error(response, status: int, code: str | None = None, field: str | None = None):
    """The response is the API's error shape with ``status`` (and ``code``/``field``)."""
    assert response.status_code == status, response.data
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "field", "request_id"}
    assert error["request_id"] == response.headers["X-Request-ID"]
    assert "Traceback" not in response.get_data(as_text=True)
    if code:
        assert error["code"] == code, error
    if field is not None:
        assert error["field"] == field, error
    return error
