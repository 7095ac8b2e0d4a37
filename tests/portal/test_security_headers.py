"""Security headers, cookie flags, and templates free of inline script and style."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from portal import create_app
from portal.db import get_database
from portal.migrate import upgrade
from tests.factories import make_customer, make_organisation, make_user

PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "portal" / "templates"


def sign_in(client, email="alice@example.com", remember=False, base_url=None):
    # Over https, Flask-WTF also checks that the form was posted from this site (Referer).
    kwargs = {}
    if base_url:
        kwargs = {"base_url": base_url, "headers": {"Referer": f"{base_url}/sign-in"}}
    page = client.get("/sign-in", **kwargs)
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1)
    data = {"csrf_token": token.decode(), "email": email, "password": PASSWORD}
    if remember:
        data["remember"] = "y"
    return client.post("/sign-in", data=data, **kwargs)


@pytest.fixture
def alice(session):
    org = make_organisation(session)
    customer = make_customer(session, org, "C1", name="Alice")
    return make_user(session, email="alice@example.com", customer=customer)


def csp_directives(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in policy.split(";"))}


def assert_security_headers(response):
    csp = csp_directives(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", "data:"] and csp["connect-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"] and csp["form-action"] == ["'self'"]
    policy = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "*" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in ("same-origin", "strict-origin-when-cross-origin")
    assert "camera=()" in response.headers["Permissions-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_every_kind_of_html_page_has_the_headers(client, alice):
    sign_in_page = client.get("/sign-in")
    not_found = client.get("/no-such-page")
    sign_in(client)
    signed_in_page = client.get("/invoices")
    for response, status in ((sign_in_page, 200), (not_found, 404), (signed_in_page, 200)):
        assert response.status_code == status
        assert response.mimetype == "text/html"
        assert_security_headers(response)
        assert response.headers["Cache-Control"] == "no-store"
    # Plain http: no HSTS, which would lock a local install out of its own address.
    assert "Strict-Transport-Security" not in signed_in_page.headers


@pytest.mark.parametrize("path", ["/pay/t/not-a-real-token", "/sign-in/link/not-a-real-token",
                                  "/password/reset/not-a-real-token"])
def test_pages_reached_by_a_token_are_never_stored(client, path):
    # A token in the address is a key to the invoice or account: no cache may keep the page.
    response = client.get(path)
    assert response.status_code < 500
    assert "no-store" in response.headers["Cache-Control"].replace(" ", "").split(",")
    assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer")
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


def test_static_files_may_be_cached_but_still_get_nosniff(client):
    response = client.get("/static/herald.css")
    assert response.status_code == 200
    assert response.headers.get("Cache-Control") != "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    response.close()


def test_htmx_is_told_not_to_inject_styles_or_evaluate_code(client):
    text = client.get("/sign-in").get_data(as_text=True)
    config = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'>', text).group(1)
    assert '"includeIndicatorStyles": false' in config and '"allowEval": false' in config
    # ...so the indicator styles htmx would have injected come from our stylesheet.
    assert ".htmx-indicator" in (ROOT / "static" / "herald.css").read_text()


def test_cookies_on_plain_http_are_httponly_and_lax(app, client, alice):
    response = sign_in(client, remember=True)
    assert response.status_code == 302
    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    for name in (app.config["SESSION_COOKIE_NAME"], "remember_token"):
        assert "HttpOnly" in cookies[name] and "SameSite=Lax" in cookies[name]
        assert "Secure" not in cookies[name]


@pytest.fixture(scope="module")
def https_app(databases, tmp_path_factory):
    """The portal as deployed behind https (its own database: it commits)."""
    https_app = create_app({
        "DATABASE_URL": databases.new_url(),
        "HERALD_INSTANCE_PATH": str(tmp_path_factory.mktemp("https-instance")),
        "HERALD_PUBLIC_URL": "https://portal.example",
        "TESTING": True,
    })
    database = get_database(https_app)
    upgrade(database.engine)
    with database.session_scope() as session:
        org = make_organisation(session)
        make_user(session, email="alice@example.com", customer=make_customer(session, org))
    yield https_app
    database.engine.dispose()


def test_cookies_and_hsts_behind_https(https_app):
    client = https_app.test_client()
    response = sign_in(client, remember=True, base_url="https://portal.example")
    assert response.status_code == 302
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    for name in (https_app.config["SESSION_COOKIE_NAME"], "remember_token"):
        assert "Secure" in cookies[name]
        assert "HttpOnly" in cookies[name] and "SameSite=Lax" in cookies[name]


def test_an_extra_origin_is_added_without_loosening_the_rest(https_app):
    from portal.security_headers import allow_source, content_security_policy

    allow_source(https_app, "form-action", "https://checkout.stripe.com")
    policy = content_security_policy(https_app)
    assert "form-action 'self' https://checkout.stripe.com" in policy
    assert "script-src 'self';" in policy
    with pytest.raises(ValueError):
        allow_source(https_app, "script-src", "'unsafe-inline'")


# --- templates -------------------------------------------------------------------------

JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
INLINE_PATTERNS = {
    "inline <script> (put the code in static/js/<feature>.js)":
        re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.I),
    "<style> element (put the rules in static/css/<feature>.css)": re.compile(r"<style\b", re.I),
    "style= attribute (use a class from a stylesheet)": re.compile(r"[\s\"']style\s*=", re.I),
    "on*= event handler (add a listener from a script file)":
        re.compile(r"<[^>]*\son[a-z]+\s*=", re.I),
    "hx-on (htmx would need eval, which the CSP forbids)": re.compile(r"\shx-on", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def inline_code(text: str) -> list[str]:
    """Names of the inline-code patterns found in one template's text."""
    text = JINJA_COMMENT.sub("", text)
    return [name for name, pattern in INLINE_PATTERNS.items() if pattern.search(text)]


def test_no_template_has_inline_script_style_or_handlers():
    templates = sorted(TEMPLATES.rglob("*.html")) + sorted(TEMPLATES.rglob("*.j2"))
    assert len(templates) >= 5
    found = {str(path.relative_to(ROOT)): inline_code(path.read_text()) for path in templates}
    assert {path: names for path, names in found.items() if names} == {}


@pytest.mark.parametrize("snippet", [
    "<script>alert(1)</script>",
    '<script type="module">go()</script>',
    '<p style="color:red">x</p>',
    "<style>p{}</style>",
    '<button onclick="go()">x</button>',
    '<body onload = "go()">',
    '<div hx-on:click="go()">',
    '<a href="javascript:go()">x</a>',
])
def test_the_template_scan_catches_each_kind(snippet):
    assert inline_code(snippet)


@pytest.mark.parametrize("snippet", [
    '<script src="/static/js/pay.js" defer></script>',
    "{# a <style> element would be refused #}",
    '<form class="inline" data-online="1">',
    '<meta name="htmx-config" content=\'{"allowEval": false}\'>',
])
def test_the_template_scan_allows_the_safe_forms(snippet):
    assert inline_code(snippet) == []
