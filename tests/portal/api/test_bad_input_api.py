"""Bad input to the invoice API, property-based: any JSON body (deep, huge, of any type)
is answered with the API's error shape or accepted, never a 500."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import invoice_json
from tests.portal.api.conftest import assert_error
from tests.portal.imports.test_bad_input import json_values


def _post_raw(api, data: bytes, key: str | None = None):
    headers = api.headers({"Content-Type": "application/json",
                           **({"Idempotency-Key": key} if key else {})})
    return api.client.post("/api/v1/invoices", data=data, headers=headers)


@pytest.mark.parametrize("data", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'{"number": 1' + b"0" * 5000 + b"}",
])
@pytest.mark.parametrize("key", [None, "retry-1"])
def test_deep_or_huge_json_is_a_400(api, data, key):
    assert_error(_post_raw(api, data, key), 400, "invalid_json")


@given(overrides=st.dictionaries(st.sampled_from(sorted(invoice_json())), json_values,
                                 max_size=3))
def test_an_invoice_with_fields_of_any_type_is_answered(session, billing, api, overrides):
    savepoint = session.begin_nested()
    try:
        body = json.dumps({**invoice_json("API-1", "C1"), **overrides}).encode()
        response = _post_raw(api, body)
        assert response.status_code < 500, response.data
        if response.status_code >= 400:
            assert_error(response, response.status_code)
    finally:
        savepoint.rollback()
        session.expire_all()
