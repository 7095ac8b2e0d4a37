"""Schemathesis against the served /api/v1/openapi.json: the description is complete and true.

Every operation in the description gets generated requests, made in-process through
WSGI, with a credential that is accepted: an API key with every scope, or a fresh customer
token for the app operations. Each answer must be no 5xx, have a documented status code
and content type, and a body and headers that match the documented schemas. Examples are
few and drawn the same way on every run: a test of the description, not a fuzzing campaign.

The cases are generated at collection time, before the ``app`` fixture exists, from the
same :func:`portal.api.spec.openapi` document the app serves (schemathesis' lazy
``from_fixture`` loader does not work with pytest 9); the first test proves that the
served /api/v1/openapi.json is exactly that document.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.api import load_operations
from portal.api.keys import create_key, issue_customer_token
from portal.api.spec import openapi
from portal.models import User
from tests.portal.api.conftest import ALL_SCOPES, assert_error
from tests.portal.test_invoices import billing  # noqa: F401 - the fixture

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]


load_operations()
schema = schemathesis.openapi.from_dict(openapi())


def test_the_tested_description_is_the_served_one(client):
    """The cases below come from exactly what /api/v1/openapi.json serves."""
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    assert served.get_json() == json.loads(json.dumps(openapi()))
    assert len(schema.raw_schema["paths"]) >= 30  # every resource module was loaded


@pytest.fixture
def credentials(session, billing):  # noqa: F811 - the fixture
    """``credentials(case)``: the Authorization header that case's operation accepts.

    It also points every other case at a real customer or invoice of the example, so
    success answers (not only 404s for generated numbers) are checked against the schemas.
    """
    # A limit no bounded run reaches: 429 is documented, but would hide the real answers.
    _key, secret = create_key(session, "schemathesis", ALL_SCOPES, actor="test",
                              rate_limit=100_000)
    session.flush()
    alice = session.query(User).filter_by(email="alice@example.com").one()
    real = {"customer_id": [alice.customer_id],
            "number": ["INV-A1", "INV-A3", "CN-A1", "INV-B1"]}
    turn = iter(range(1_000_000))

    def header(case) -> dict[str, str]:
        n = next(turn)
        for name, values in real.items():
            if n % 2 and name in (case.path_parameters or {}):
                case.path_parameters[name] = values[n // 2 % len(values)]
        security = case.operation.definition.raw.get("security") or []
        if not security:
            return {}
        if "customerToken" in security[0]:
            # A fresh token each time: DELETE /session revokes the one it is called with.
            _token, token = issue_customer_token(session, alice, days=1)
            return {"Authorization": f"Bearer {token}"}
        return {"Authorization": f"Bearer {secret}"}

    return header


@schema.parametrize()
@settings(max_examples=6, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_operation_answers_as_described(case, app, credentials):
    """Generated requests get only answers the description allows."""
    case.call_and_validate(headers=credentials(case), checks=CHECKS, app=app)


@pytest.mark.parametrize("path", ["/customers/{}", "/customers/{}/notes", "/waves/{}/pause",
                                  "/webhook-endpoints/{}", "/signature-requests/{}"])
def test_an_id_beyond_the_id_columns_is_not_found(api, path):
    """Found by schemathesis: ids past 2**31 - 1 (PostgreSQL's INTEGER) were a 500 there,
    and past 2**63 - 1 (what SQLite binds) on SQLite."""
    for number in (2**31 - 1, 2**31, 2**63, 2**64):
        url = path.format(number)
        response = api.post(url) if url.endswith("pause") else api.get(url)
        assert_error(response, 404, "not_found")
