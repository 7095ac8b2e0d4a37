"""One error shape for every /api/v1 answer, with the request ID; never a stack trace."""

from __future__ import annotations

import re
import secrets

from flask import Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

PREFIX = "/api/v1"
REQUEST_ID_HEADER = "X-Request-ID"
_GOOD_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# What each status means for a caller, for errors raised without a message of our own.
DEFAULTS = {
    400: ("bad_request", "The request could not be read; send JSON with Content-Type "
                         "application/json."),
    401: ("unauthenticated", "Send 'Authorization: Bearer <key>' with a valid, unrevoked key."),
    403: ("forbidden", "This key lacks the scope this operation needs."),
    404: ("not_found", "There is nothing at this address; check the path and the identifier."),
    405: ("method_not_allowed", "This path does not accept this method; see "
                                "/api/v1/openapi.json for the methods it does."),
    409: ("conflict", "The request conflicts with the current state; read it again and retry."),
    413: ("payload_too_large", "The body is too large; send at most 16 MB."),
    415: ("unsupported_media_type", "Send the body as JSON with Content-Type application/json."),
    422: ("validation_failed", "A field is not valid; see 'field'."),
    429: ("rate_limited", "Too many requests for this key; wait for Retry-After seconds."),
    500: ("internal_error", "Something went wrong on our side; it has been logged. Retry "
                            "with the same Idempotency-Key."),
}


class ApiError(Exception):
    """An error answered as ``{"error": {...}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, *,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}


def is_api_request() -> bool:
    """True for requests under /api/v1."""
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def request_id() -> str:
    """The caller's X-Request-ID when it is sensible, else one made for this request."""
    if "api_request_id" not in g:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.api_request_id = given if _GOOD_REQUEST_ID.match(given) else secrets.token_hex(12)
    return g.api_request_id


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """The JSON error answer."""
    body = {"error": {"code": code, "message": message, "field": field,
                      "request_id": request_id()}}
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def from_exception(error: Exception) -> Response:
    """The answer for any exception raised while handling an API request."""
    if isinstance(error, ApiError):
        return error_response(error.status, error.code, error.message, error.field,
                              error.headers)
    if isinstance(error, HTTPException):
        status = error.code or 500
        code, message = DEFAULTS.get(status, ("error", error.description or "Error."))
        headers = {}
        if status == 405 and getattr(error, "valid_methods", None):
            headers["Allow"] = ", ".join(error.valid_methods)
        return error_response(status, code, message, headers=headers)
    current_app.logger.exception("unhandled API error on %s %s (request %s)",
                                 request.method, request.path, request_id())
    return error_response(500, *DEFAULTS[500])
