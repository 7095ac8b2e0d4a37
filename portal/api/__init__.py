"""Herald's integration API at /api/v1: for call centres, CRMs, billing systems and apps.

Every operation is declared with :func:`portal.api.spec.operation` (route, scope,
schemas), which is also what /api/v1/openapi.json describes. Requests authenticate
with a bearer API key (or a customer's app token), retried POSTs are made safe by
``Idempotency-Key`` (:mod:`portal.api.idempotency`) and every error has one shape
(:mod:`portal.api.errors`).
"""

from __future__ import annotations

from flask import Blueprint, Flask, g, request
from werkzeug.exceptions import HTTPException

from portal.api import errors, idempotency
from portal.api.auth import authenticate
from portal.api.spec import OPERATIONS

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.before_request
def _before():
    op = OPERATIONS.get(request.endpoint or "")
    if op is None or request.method == "OPTIONS":
        return None
    if any("\x00" in str(value) for value in (request.view_args or {}).values()):
        raise errors.ApiError(404, "not_found", "There is nothing at this address (it holds a "
                              "NUL character); check the identifier.")
    authenticate(op)
    if request.method in ("POST", "PATCH") and op.auth != "none":
        return idempotency.begin(g.api_caller.caller)
    return None


@bp.after_request
def _after(response):
    idempotency.finish(response)
    return response


@bp.teardown_request
def _teardown(_exc):
    idempotency.release()


def load_operations() -> None:
    """Import every resource module: each registers its operations on :data:`bp`."""
    from portal.api import (  # noqa: F401
        contacts,
        customers,
        deliveries,
        disputes,
        docs,
        invoices,
        notes,
        payments,
        refunds,
        runs,
        session_routes,
        signatures,
        webhooks,
    )


def init_app(app: Flask) -> None:
    """Register the API blueprint, its CLI and its error answers (after portal.errors)."""
    load_operations()
    from portal.api.cli import api_keys_group
    from portal.extensions import csrf

    csrf.exempt(bp)  # API calls carry a bearer key, never a cookie
    app.register_blueprint(bp)
    app.cli.add_command(api_keys_group)

    handlers = app.error_handler_spec.setdefault(None, {}).setdefault(None, {})
    for exc_class in (HTTPException, Exception):
        handlers[exc_class] = _api_first(handlers.get(exc_class), exc_class)
    handlers[errors.ApiError] = errors.from_exception

    @app.after_request
    def _request_id(response):
        if errors.is_api_request():
            response.headers[errors.REQUEST_ID_HEADER] = errors.request_id()
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def _api_first(original, exc_class):
    """An error handler answering API requests with JSON, the others as before."""

    def handler(error):
        if errors.is_api_request():
            return errors.from_exception(error)
        if original is not None:
            return original(error)
        if isinstance(error, HTTPException):
            return error
        raise error

    handler.__name__ = f"api_or_{exc_class.__name__.lower()}"
    return handler
