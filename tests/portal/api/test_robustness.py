"""Bad input never makes the API fail: every operation, fed wrong types and odd values, answers
a documented 4xx in the error shape (a small, deterministic cousin of schemathesis)."""

from __future__ import annotations

import re

import pytest

from portal.api import load_operations
from portal.api.spec import OPERATIONS
from tests.portal.api.conftest import described

load_operations()  # the parameters below are made before any app exists

ODD_VALUES = [None, 0, -1, 10**20, 1.5, "", " ", "x" * 5000, "\u0000", "é✓", [], {}, True,
              "2026-02-30", "../../etc/passwd", "<script>", "1e309", "NaN"]


def _path(rule: str) -> str:
    return re.sub(r"<(?:([a-z]+):)?([a-z_]+)>",
                  lambda m: "999999" if m.group(1) == "int" else "NO-SUCH-1", rule)


def _cases():
    for op in sorted(OPERATIONS.values(), key=lambda o: (o.rule, o.method)):
        if op.auth != "key":
            continue
        yield pytest.param(op, id=f"{op.method} {op.rule}")


@pytest.mark.parametrize("op", list(_cases()))
def test_odd_input_gets_a_documented_4xx_never_a_5xx(op, api, billing):
    path = _path(op.rule)
    if op.method == "GET":
        for param in op.query:
            for value in ("", "x" * 300, "-1", "é", "9" * 30, "%00"):
                response = api.get(f"{path}?{param.name}={value}")
                assert response.status_code < 500, (param.name, value, response.data)
        return
    bodies: list = [None, [], "text", 7]
    properties = (op.body or {}).get("properties", {})
    for name in properties:
        bodies.extend({name: value} for value in ODD_VALUES)
    for body in bodies:
        response = getattr(api, op.method.lower())(path, body)
        assert response.status_code < 500, (body, response.data)
        if response.status_code >= 400:
            error = response.get_json()["error"]
            assert error["code"] and error["message"] and error["request_id"]


def test_invoice_numbers_with_a_slash_work_in_paths(api, session, billing):
    from tests.factories import invoice_json
    from tests.portal.test_invoices import import_rows

    import_rows(session, [invoice_json("2026/0042", "C1")])
    response = api.get("/invoices/2026/0042")
    assert response.status_code == 200 and response.get_json()["number"] == "2026/0042"
    assert api.get("/invoices/2026%2F0042").get_json()["number"] == "2026/0042"
    deliveries = api.get("/invoices/2026/0042/deliveries")
    assert deliveries.status_code == 200


def test_unknown_routes_are_checked_too(api):
    assert described(api.client, "GET", "/nope", api.get("/nope")).status_code == 404


def test_a_nul_character_in_a_path_is_not_found(api):
    from tests.portal.api.conftest import assert_error

    assert_error(api.get("/invoices/INV%00-1"), 404, "not_found")
