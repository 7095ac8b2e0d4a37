"""Security headers on every response, and the cookie flags that go with them.

The content security policy allows scripts and styles from our own origin only:
no inline ``<script>``, no ``style=""``, no ``on*=`` handlers (a test scans every
template). htmx is configured in ``base.html`` not to inject styles or evaluate code.

A feature that must send the browser elsewhere (a payment provider's checkout page
after a form POST: browsers apply ``form-action`` to the redirect too) adds that
origin with :func:`allow_source` when the app is built, never by loosening the
defaults here.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from werkzeug.wrappers import Response

EXTENSION_KEY = "herald.csp"

CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "font-src": ["'self'"],
    "manifest-src": ["'self'"],
    "worker-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "object-src": ["'none'"],
}

# Nothing in the portal needs these; denying them limits what injected content could use.
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "camera", "display-capture", "geolocation", "gyroscope",
    "magnetometer", "microphone", "midi", "payment", "usb", "interest-cohort",
))

# One year, as browsers' preload lists expect; only sent when Herald is served over https.
HSTS = "max-age=31536000; includeSubDomains"


def allow_source(app: Flask, directive: str, source: str) -> None:
    """Add ``source`` (an origin like ``https://checkout.stripe.com``) to one CSP directive."""
    if source.strip() != source or not source or "'" in source or ";" in source:
        raise ValueError(f"CSP source {source!r} must be one origin or scheme, e.g. https://x.example")
    policy = app.extensions.setdefault(
        EXTENSION_KEY, {k: list(v) for k, v in CONTENT_SECURITY_POLICY.items()})
    sources = policy.setdefault(directive, [])
    if "'none'" in sources:
        sources.remove("'none'")
    if source not in sources:
        sources.append(source)


def content_security_policy(app: Flask | None = None) -> str:
    """The policy header value of ``app`` (default: the current app)."""
    policy = (app or current_app).extensions[EXTENSION_KEY]
    return "; ".join(f"{directive} {' '.join(sources)}" for directive, sources in policy.items())


def init_app(app: Flask) -> None:
    """Set the cookie flags and add the headers to every response."""
    https = app.config["HERALD"].public_url.startswith("https://")
    # Flask-Login's remember cookie defaults to no SameSite; give it the session cookie's.
    for prefix in ("SESSION_COOKIE", "REMEMBER_COOKIE"):
        app.config.setdefault(f"{prefix}_HTTPONLY", True)
        app.config.setdefault(f"{prefix}_SAMESITE", "Lax")
        app.config.setdefault(f"{prefix}_SECURE", https)
    # A feature initialised earlier may already have added its sources (allow_source).
    app.extensions.setdefault(EXTENSION_KEY,
                              {k: list(v) for k, v in CONTENT_SECURITY_POLICY.items()})

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", content_security_policy(app))
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if https:
            headers.setdefault("Strict-Transport-Security", HSTS)
        if _must_not_be_stored(response):
            response.headers["Cache-Control"] = "no-store"
        return response


def _must_not_be_stored(response: Response) -> bool:
    """True unless the response is a static file or its view chose its own caching.

    Every page the portal renders is a signed-in person's page, or reached with a
    secret in its URL (review and pay links, magic links, password resets), or holds a
    form with a CSRF token: neither a shared cache nor the browser's back-button
    history may keep it. Marking all of them, rather than a list of endpoints, means a
    new token page is covered without anyone remembering to add it. A view that sets
    its own Cache-Control (a download revalidated by ETag) knows better.
    """
    return request.endpoint != "static" and "Cache-Control" not in response.headers
