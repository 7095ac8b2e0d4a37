"""Herald's portal: the Flask app for customers, operators and integrations."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask

from portal import db
from portal.config import Settings
from portal.extensions import csrf, htmx, login_manager

# Settings read from the environment; in ``create_app(config)`` the same names override them.
SETTING_NAMES = (
    "DATABASE_URL",
    "SECRET_KEY",
    "HUEY_URL",
    "EINVOICE_RULES_DIR",
    "DOCUMENT_STORE",
    "HERALD_INSTANCE_PATH",
    "HERALD_PUBLIC_URL",
    "SESSION_LIFETIME_MINUTES",
    "IMPORT_PROGRESS_THRESHOLD",
)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the portal app.

    ``config`` overrides environment variables of the same name (see
    :data:`SETTING_NAMES`) and any other Flask setting, which is how tests pick
    their database and instance folder.
    """
    config = dict(config or {})
    environ = {**os.environ, **{k: str(config.pop(k)) for k in SETTING_NAMES if k in config}}
    app = Flask(
        __name__,
        instance_path=environ.get("HERALD_INSTANCE_PATH") or None,
        static_folder=str(Path(__file__).resolve().parent.parent / "static"),
    )
    settings = Settings.from_env(Path(app.instance_path), environ)
    app.config.update(
        HERALD=settings,
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        REMEMBER_COOKIE_SECURE=settings.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_lifetime_minutes),
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
    )
    app.config.update(config)

    db.init_app(app, settings.database_url)
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)

    from portal import auth, errors, formatting, health, invoices, ops, queue

    queue.init_app(app, settings)
    errors.init_app(app)
    formatting.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(invoices.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(ops.bp)

    from portal.cli import register_commands

    register_commands(app)
    return app
