"""Herald's portal: the Flask app for customers, operators and integrations."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_app_context

from distribution import sealing
from portal import db, proxy, security_headers
from portal.config import Settings
from portal.extensions import csrf, htmx, login_manager

# Environment variables Herald reads (see portal.config); in ``create_app(config)`` the
# same names override them.
SETTING_PREFIXES = (
    "DATABASE_URL", "SECRET_KEY", "HUEY_URL", "EINVOICE_", "HERALD_", "SESSION_LIFETIME_",
    "IMPORT_", "DOCUMENT_STORE", "MAIL_", "SMTP_", "DKIM_", "VAPID_", "WEB_PUSH_", "FCM_",
    "PEPPOL_", "SIGNING_", "STRIPE_", "PAY_LINK_", "SIGN_IN_", "METRICS_", "RETENTION_",
    "TRUSTED_PROXIES", "PROXY_FIX_", "OIDC_", "REFUND_",
)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the portal app.

    ``config`` overrides environment variables of the same name (see
    :data:`SETTING_PREFIXES`) and any other Flask setting, which is how tests pick
    their database and instance folder.
    """
    config = dict(config or {})
    overrides = {k: str(config.pop(k)) for k in list(config) if k.startswith(SETTING_PREFIXES)}
    environ = {**os.environ, **overrides}
    app = Flask(
        __name__,
        instance_path=environ.get("HERALD_INSTANCE_PATH") or None,
        static_folder=str(Path(__file__).resolve().parent.parent / "static"),
    )
    settings = Settings.from_env(Path(app.instance_path), environ)
    app.config.update(
        HERALD=settings,
        SECRET_KEY=settings.secret_key,
        SECRET_KEY_FALLBACKS=list(settings.secret_key_fallbacks),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        REMEMBER_COOKIE_SECURE=settings.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_lifetime_minutes),
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
    )
    app.config.update(config)

    # Secrets at rest: sealed with this app's key, opened with any key this process knows.
    app.extensions["herald_keyring"] = sealing.install(
        settings.secret_key, settings.secret_key_fallbacks, current=_app_keyring)
    db.init_app(app, settings.database_url)
    proxy.init_app(app, settings.proxy)  # behind a reverse proxy: the real client address
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)

    from portal import auth, disputes, errors, formatting, health, i18n, invoices, ops, queue

    queue.init_app(app, settings)
    errors.init_app(app)
    formatting.init_app(app)
    i18n.init_app(app)
    security_headers.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(invoices.bp)
    app.register_blueprint(disputes.bp)
    app.register_blueprint(health.bp)
    from portal import metrics

    app.register_blueprint(metrics.bp)  # /metrics for Prometheus (token or loopback)
    from portal import preferences  # how we reach you, the manifest, the service worker
    app.register_blueprint(preferences.bp)
    app.register_blueprint(ops.bp)
    from portal import pay

    pay.init_app(app)  # review & pay links, payment providers, their webhook
    from portal import signing

    signing.init_app(app)
    from portal import api

    api.init_app(app)  # /api/v1 for integrations (after errors: it answers API errors as JSON)

    from portal.cli import register_commands

    register_commands(app)
    return app


def _app_keyring() -> sealing.Keyring | None:
    """The keyring of the app at work, if any (see distribution.sealing)."""
    return current_app.extensions.get("herald_keyring") if has_app_context() else None
