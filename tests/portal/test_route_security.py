"""Every route against the access table in tests/portal/route_access.py.

A route missing from the table fails; then each row is proved: anonymous callers are sent to
sign-in (HTML) or refused with 401 (API); customers get 403 on staff pages; each staff role
gets 403 where its role is not allowed and passes where it is; API keys lacking the scope get
403; customer B gets 404 on customer A's objects; every form POST without a CSRF token is 400.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.api.keys import create_key
from portal.api.spec import OPERATIONS
from portal.models import Role
from tests.factories import make_customer, make_organisation, make_user
from tests.portal.route_access import OWNERSHIP, ROUTES, STAFF_ROLES, markdown_table
from tests.portal.test_web import sign_in

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "security.md"
SCOPES = ["read", "invoices:write", "payments:write", "customers:write", "support",
          "runs:write", "admin"]
# Ids that match no row: role checks must refuse before the object is looked up.
MISSING_ID = 987654
# A real template, so the editor reaches its role check instead of a 404 for an unknown text.
# Pay pages answering a browser without a pay-link grant: the link-recovery form, for anyone.
RECOVERY_FORMS = {"pay.show", "pay.recover"}
TEMPLATE = {"kind": "invoice", "part": "email_subject", "language": "en"}


def _rules(app):
    """(rule, method, endpoint) for every route and method the app serves."""
    out = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule, method, rule.endpoint))
    return out


def _url(rule, *, ids: dict[str, object] | None = None) -> str:
    """A path for ``rule``: ids that match nothing unless ``ids`` names real ones."""
    values: dict[str, object] = {}
    for name, converter in rule._converters.items():
        if hasattr(converter, "items"):  # any(...): the first choice
            values[name] = sorted(converter.items)[0]
        elif type(converter).__name__ == "IntegerConverter":
            values[name] = MISSING_ID
        else:
            values[name] = "no-such-thing"
    values.update({k: v for k, v in (ids or {}).items() if k in rule.arguments})
    return rule.build(values)[1]


def _call(client, method: str, path: str, **kwargs):
    return client.open(path, method=method, **kwargs)


def _where(rule, method) -> str:
    return f"{method} {rule.rule} ({rule.endpoint})"


@pytest.fixture
def no_csrf(app, monkeypatch):
    """Call to prove access checks on their own: CSRF (tested below) is then switched off."""
    return lambda: monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", False)


@pytest.fixture
def people(session):
    org = make_organisation(session)
    alice = make_customer(session, org, "C1", name="Alice")
    bob = make_customer(session, org, "C2", name="Bob")
    make_user(session, email="alice@example.com", customer=alice)
    make_user(session, email="bob@example.com", customer=bob)
    for role in STAFF_ROLES - {Role.ADMIN}:
        make_user(session, email=f"{role.value}@example.com", role=role)
    return alice, bob


def test_every_route_is_in_the_access_table(app):
    served = {endpoint for _rule, _method, endpoint in _rules(app)}
    missing = sorted(served - set(ROUTES))
    assert not missing, (f"Routes with no access row: {missing}. Add each to ROUTES in "
                         "tests/portal/route_access.py (public, token, signed-in, customer, "
                         "staff roles or API scope) and regenerate the table in "
                         "docs/security.md.")
    stale = sorted(set(ROUTES) - served)
    assert not stale, f"ROUTES names endpoints the app no longer serves: {stale}"


def test_api_rows_agree_with_the_served_openapi_description(app):
    for endpoint, access in ROUTES.items():
        if not endpoint.startswith("api."):
            continue
        op = OPERATIONS[endpoint]
        expected = {"api": ("key", access.scope), "api-customer": ("customer", None),
                    "api-public": ("none", None)}[access.kind]
        assert (op.auth, op.scope) == expected, endpoint


def test_every_customer_object_route_has_an_ownership_test(app):
    """Customer B's 404 on customer A's objects is proved by the test OWNERSHIP names."""
    needing = {rule.endpoint for rule in app.url_map.iter_rules()
               if ROUTES[rule.endpoint].kind == "customer" and rule.arguments}
    missing = sorted(needing - set(OWNERSHIP))
    assert not missing, (f"Customer routes naming an object with no ownership test: {missing}; "
                         "write one (customer B gets 404 on customer A's object) and name it "
                         "in OWNERSHIP in tests/portal/route_access.py")
    for endpoint, node in OWNERSHIP.items():
        path, _, name = node.partition("::")
        assert f"def {name}(" in (ROOT / path).read_text(encoding="utf-8"), (endpoint, node)


def test_docs_security_md_carries_the_table(app):
    rows = {(rule.rule, ", ".join(sorted(rule.methods - {"HEAD", "OPTIONS"})), rule.endpoint)
            for rule in app.url_map.iter_rules()}
    assert markdown_table(sorted(rows)) in DOCS.read_text(encoding="utf-8"), (
        "docs/security.md is out of date: paste the output of "
        "tests.portal.route_access.markdown_table into it")


def test_anonymous_callers_are_sent_to_sign_in_or_refused(app, client, people, no_csrf):
    no_csrf()
    wrong = []
    for rule, method, endpoint in _rules(app):
        kind = ROUTES[endpoint].kind
        if kind in ("public", "token", "api-public"):
            continue
        response = _call(client, method, _url(rule))
        if kind.startswith("api"):
            ok = response.status_code == 401
        else:
            ok = response.status_code == 302 and "/sign-in" in response.location
        if not ok:
            wrong.append(f"{_where(rule, method)} -> {response.status_code}")
    assert not wrong, wrong


def test_customers_get_403_on_every_staff_route(app, client, people, no_csrf):
    sign_in(client, "alice@example.com")
    no_csrf()
    wrong = [f"{_where(rule, method)} -> {response.status_code}"
             for rule, method, endpoint in _rules(app) if ROUTES[endpoint].kind == "staff"
             for response in [_call(client, method, _url(rule))] if response.status_code != 403]
    assert not wrong, wrong


@pytest.mark.parametrize("role", sorted(STAFF_ROLES - {Role.ADMIN}))
def test_each_staff_role_is_refused_exactly_where_its_role_is_not_allowed(app, client, people,
                                                                         no_csrf, role):
    sign_in(client, f"{role.value}@example.com")
    no_csrf()
    wrong = []
    for rule, method, endpoint in _rules(app):
        access = ROUTES[endpoint]
        if access.kind != "staff":
            continue
        roles = access.post_roles if (method == "POST" and access.post_roles is not None) \
            else access.roles
        status = _call(client, method, _url(rule, ids=TEMPLATE)).status_code
        if (role in roles) == (status == 403):
            wrong.append(f"{_where(rule, method)} -> {status} (allowed: {role in roles})")
    assert not wrong, wrong


def test_staff_are_refused_the_customer_portal(app, client, people, no_csrf):
    sign_in(client, "billing_operator@example.com")
    no_csrf()
    wrong = [f"{_where(rule, method)} -> {response.status_code}"
             for rule, method, endpoint in _rules(app) if ROUTES[endpoint].kind == "customer"
             for response in [_call(client, method, _url(rule))]
             if response.status_code not in (403, 404)]
    assert not wrong, wrong


def test_api_keys_without_the_scope_get_403_and_with_it_pass(app, client, session, people):
    wrong = []
    for rule, method, endpoint in _rules(app):
        access = ROUTES[endpoint]
        if access.kind != "api":
            continue
        _key, lacking = create_key(session, f"lacks {endpoint}",
                                   [s for s in SCOPES if s != access.scope], actor="test")
        _key, having = create_key(session, f"has {endpoint}", [access.scope], actor="test")
        session.flush()
        for secret, refused in ((lacking, True), (having, False)):
            response = _call(client, method, _url(rule), json={},
                             headers={"Authorization": f"Bearer {secret}",
                                      "Idempotency-Key": f"k-{endpoint}-{refused}"})
            if (response.status_code == 403) != refused or response.status_code == 401:
                wrong.append(f"{_where(rule, method)} refused={refused} -> "
                             f"{response.status_code}")
    assert not wrong, wrong


def test_every_form_post_without_a_csrf_token_is_refused(app, client, people):
    sign_in(client, "billing_operator@example.com")
    staff_client = client
    customer_client = app.test_client()
    sign_in(customer_client, "alice@example.com")
    anonymous = app.test_client()
    wrong = []
    for rule, method, endpoint in _rules(app):
        access = ROUTES[endpoint]
        if method == "GET" or access.kind.startswith("api") or endpoint == "pay.stripe_webhook":
            continue
        caller = {"staff": staff_client, "customer": customer_client,
                  "signed-in": customer_client}.get(access.kind, anonymous)
        response = _call(caller, method, _url(rule), data={})
        if response.status_code != 400:
            wrong.append(f"{_where(rule, method)} -> {response.status_code}")
    assert not wrong, wrong


def test_token_links_with_a_made_up_token_reveal_nothing(app, client, people, no_csrf):
    no_csrf()
    wrong = []
    for rule, method, endpoint in _rules(app):
        if ROUTES[endpoint].kind != "token":
            continue
        response = _call(client, method, _url(rule), data={})
        if endpoint in RECOVERY_FORMS and response.status_code in (200, 422) \
                and b'name="email"' in response.data and b"INV-" not in response.data:
            continue  # the same "send me a new link" form for anyone, known invoice or not
        if response.status_code not in (404, 410):
            wrong.append(f"{_where(rule, method)} -> {response.status_code}")
    assert not wrong, wrong
