"""Operations of /api/v1 declared once: the route, its scope, its schemas, its documentation.

Every view is registered with :func:`operation`, which adds the Flask rule and
records what the OpenAPI description says about it; the JSON body is validated
against the declared schema before the view runs, so the description and the
behaviour cannot drift apart. :func:`openapi` builds the OpenAPI 3.1 document.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, g, request
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from portal.api.errors import ApiError

SCOPES = {
    "read": "Read customers, invoices, deliveries, disputes, notes and runs.",
    "invoices:write": "Create and issue invoices; resend them.",
    "payments:write": "Record payments and refunds.",
    "customers:write": "Write notes on customers and invoices.",
    "support": "Open and answer disputes, resend invoices, read suppressed notes' existence.",
    "runs:write": "Create runs and pause, resume or cancel their waves.",
    "admin": "Register webhook endpoints, read their delivery logs and replay deliveries.",
}

ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["code", "message", "request_id"],
        "properties": {
            "code": {"type": "string", "description": "Stable, machine-readable code."},
            "message": {"type": "string", "description": "What is wrong and how to fix it."},
            "field": {"type": ["string", "null"],
                      "description": "The field of the request the error is about."},
            "request_id": {"type": "string",
                           "description": "Also in the X-Request-ID header; quote it to us."},
        },
    }},
}


@dataclass
class Param:
    """A query parameter."""

    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass
class Operation:
    """One method on one path."""

    rule: str
    method: str
    endpoint: str
    summary: str
    description: str
    tag: str
    auth: str  # "key", "customer" or "none"
    scope: str | None
    body: dict[str, Any] | None
    query: list[Param]
    responses: dict[int, tuple[str, dict[str, Any] | None, str]]
    validator: Draft202012Validator | None = field(default=None, repr=False)

    @property
    def path(self) -> str:
        """The OpenAPI path (``/api/v1/invoices/{number}``)."""
        return "/api/v1" + re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", self.rule)

    @property
    def path_params(self) -> list[tuple[str, str]]:
        """(name, converter) of every path parameter."""
        return [(m.group(2), m.group(1) or "string")
                for m in re.finditer(r"<(?:([a-z]+):)?([a-z_]+)>", self.rule)]


MAX_ID = 2**31 - 1  # ids are INTEGER columns: PostgreSQL refuses to compare with a bigger one
OPERATIONS: dict[str, Operation] = {}
# Schemas that operations refer to as #/components/schemas/<name>.
COMPONENTS: dict[str, dict[str, Any]] = {}
# What Herald POSTs to registered webhook endpoints (OpenAPI 3.1 top-level "webhooks").
WEBHOOKS: dict[str, dict[str, Any]] = {}


def operation(bp: Blueprint, rule: str, method: str, *, summary: str, tag: str,
              responses: dict[int, tuple[str, dict[str, Any] | None] | tuple[str, Any, str]],
              scope: str | None = "read", auth: str = "key", body: dict | None = None,
              query: list[Param] | None = None, description: str = "",
              validate: bool = True) -> Callable:
    """Register a view at ``rule`` for ``method`` and document it."""
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"unknown scope {scope}")

    def decorator(view: Callable) -> Callable:
        endpoint = f"{bp.name}.{view.__name__}"
        full = {status: (*r, "application/json")[:3] for status, r in responses.items()}
        op = Operation(rule, method, endpoint, summary, description or (view.__doc__ or ""),
                       tag, auth, scope if auth == "key" else None, body, list(query or []),
                       full, Draft202012Validator(body) if body and validate else None)
        OPERATIONS[endpoint] = op

        @functools.wraps(view)
        def wrapper(**kwargs: Any):
            for name, converter in op.path_params:
                # Flask's int converter takes any digits; no row has a larger id, and the
                # databases refuse to compare with one (out of range: it was a 500).
                if converter == "int" and kwargs[name] > MAX_ID:
                    raise ApiError(404, "not_found", f"No such {name}: identifiers are at most "
                                   f"{MAX_ID}; check the identifier.", name)
            if op.body is not None:
                g.api_body = validated_body(op)
            g.api_query = validated_query(op)
            return view(**kwargs)

        bp.add_url_rule(rule, view.__name__, wrapper, methods=[method])
        return wrapper

    return decorator


def validated_body(op: Operation) -> dict[str, Any]:
    """The JSON body, checked against the operation's schema; the first problem is raised."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type",
                       "Send the body as JSON with 'Content-Type: application/json'.")
    try:
        data = json.loads(request.get_data(as_text=True) or "null")
    except ValueError as exc:
        raise ApiError(400, "invalid_json", f"The body is not valid JSON ({exc}); send one "
                       "JSON object.") from exc
    except RecursionError:  # thousands of nested brackets exhaust the parser's stack
        raise ApiError(400, "invalid_json", "The body is nested too deeply; send one JSON "
                       "object in the documented shape.") from None
    nul = _nul_path(data)
    if nul is not None:
        raise ApiError(422, "invalid_value", f"{nul or 'the body'} holds a NUL character "
                       "(\\u0000); remove it.", nul or None)
    if op.validator is None:
        if not isinstance(data, dict):
            raise ApiError(422, "invalid_type", "The body must be a JSON object.")
        return data
    errors = sorted(op.validator.iter_errors(data),
                    key=lambda e: (len(e.path), [str(p) for p in e.path]))
    if errors:
        raise schema_error(errors[0])
    return data


def _nul_path(data: Any, path: str = "") -> str | None:
    """Where a string holds NUL (which PostgreSQL cannot store), or None."""
    if isinstance(data, str):
        return path if "\x00" in data else None
    items = data.items() if isinstance(data, dict) else \
        enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        if isinstance(key, str) and "\x00" in key:
            return path or "body"
        found = _nul_path(value, f"{path}[{key}]" if isinstance(key, int)
                          else f"{path}.{key}".lstrip("."))
        if found is not None:
            return found
    return None


def schema_error(error: ValidationError, prefix: str = "") -> ApiError:
    """A validation error naming the field and what to send instead."""
    path = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
    path = path.lstrip(".")
    if error.validator == "required":
        missing = re.search(r"'([^']+)' is a required property", error.message)
        name = missing.group(1) if missing else ""
        path = f"{path}.{name}" if path and name else (name or path)
        return ApiError(422, "missing_field", f"{path} is required; add it to the request.",
                        path)
    if error.validator == "additionalProperties":
        extra = re.findall(r"'([^']+)'", error.message)
        name = f"{path}.{extra[0]}" if path and extra else (extra[0] if extra else path)
        return ApiError(422, "unknown_field", f"{name} is not a field of this request; remove "
                        "it (see /api/v1/openapi.json for the fields).", name)
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)
        return ApiError(422, "invalid_value", f"{path or 'the body'} must be one of: {allowed}.",
                        path or None)
    if error.validator == "type":
        kind = error.validator_value
        return ApiError(422, "invalid_type", f"{path or 'the body'} must be of type {kind}.",
                        path or None)
    if error.validator == "pattern":
        hint = error.schema.get("description") or f"match {error.validator_value}"
        return ApiError(422, "invalid_value", f"{path} is not valid: {hint}.", path or None)
    return ApiError(422, "invalid_value", f"{path or 'the body'}: {error.message}; see "
                    "/api/v1/openapi.json for what this field accepts.", path or None)


_QUERY_TYPES = {"integer": int, "string": str}


def validated_query(op: Operation) -> dict[str, Any]:
    """The declared query parameters, converted; unknown ones are ignored."""
    values: dict[str, Any] = {}
    for param in op.query:
        raw = request.args.get(param.name)
        if raw is None or raw == "":
            if param.required:
                raise ApiError(422, "missing_field", f"The query parameter {param.name} is "
                               "required.", param.name)
            continue
        if "\x00" in raw:
            raise ApiError(422, "invalid_value", f"{param.name} holds a NUL character; remove "
                           "it.", param.name)
        kind = param.schema.get("type", "string")
        if kind == "integer":
            if not re.fullmatch(r"-?\d{1,12}", raw):
                raise ApiError(422, "invalid_type", f"{param.name} must be a whole number.",
                               param.name)
            value: Any = int(raw)
            low, high = param.schema.get("minimum"), param.schema.get("maximum", MAX_ID)
            if (low is not None and value < low) or (high is not None and value > high):
                raise ApiError(422, "invalid_value", f"{param.name} must be between {low} and "
                               f"{high}.", param.name)
        else:
            value = raw
            try:
                Draft202012Validator(param.schema).validate(value)
            except ValidationError as exc:
                raise schema_error(exc, prefix=param.name) from exc
        values[param.name] = value
    return values


def body() -> dict[str, Any]:
    """The validated JSON body of the current request."""
    return g.api_body


def query() -> dict[str, Any]:
    """The validated query parameters of the current request."""
    return g.api_query


def _error_ref() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _operation_object(op: Operation) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    for name, converter in op.path_params:
        parameters.append({"name": name, "in": "path", "required": True,
                           "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}
                           if converter == "int" else {"type": "string"}})
    for param in op.query:
        parameters.append({"name": param.name, "in": "query", "required": param.required,
                           "description": param.description,
                           "schema": {"maximum": MAX_ID, **param.schema}
                           if param.schema.get("type") == "integer" else param.schema})
    if op.method in ("POST", "PATCH") and op.auth != "none":
        parameters.append({
            "name": "Idempotency-Key", "in": "header", "required": False,
            "description": "Any unique string up to 255 characters (a call ID fits). The same "
                           "key with the same body returns the first answer without acting "
                           "again, for at least 24 hours; with a different body it is refused.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255}})
    parameters.append({"name": "X-Request-ID", "in": "header", "required": False,
                       "description": "Echoed back; generated when absent.",
                       "schema": {"type": "string", "maxLength": 128}})
    responses: dict[str, Any] = {}
    for status, (text, schema, media) in sorted(op.responses.items()):
        entry: dict[str, Any] = {"description": text}
        if schema is not None:
            entry["content"] = {media: {"schema": schema}}
        elif media != "application/json":
            entry["content"] = {media: {"schema": {"type": "string",
                                                   "contentMediaType": media}}}
        responses[str(status)] = entry
    common = {"404": "Not found.", "500": "Unexpected error."}
    if op.auth != "none":
        common["401"] = "Missing, unknown, expired or revoked credentials."
    if op.auth == "key":
        common["403"] = f"The key lacks the '{op.scope}' scope."
        common["429"] = "Rate limit reached; see Retry-After."
    if op.body is not None or op.query:
        common["422"] = "A field is invalid; 'field' names it."
    if op.body is not None:
        common["400"] = "The body is not JSON."
        common["415"] = "The body is not sent as application/json."
    if op.method in ("POST", "PATCH") and op.auth != "none":
        common["409"] = "A request with this Idempotency-Key is still in progress."
        common["422"] = ("A field is invalid ('field' names it), or the Idempotency-Key was "
                         "used with a different body.")
    for status, text in common.items():
        responses.setdefault(status, {"description": text, "content": _error_ref()})
    result: dict[str, Any] = {
        "operationId": op.endpoint.split(".", 1)[1],
        "summary": op.summary, "tags": [op.tag], "parameters": parameters,
        "responses": responses,
    }
    if op.description.strip():
        result["description"] = " ".join(op.description.split())
    if op.body is not None:
        result["requestBody"] = {"required": True,
                                 "content": {"application/json": {"schema": op.body}}}
    if op.auth == "key":
        result["security"] = [{"apiKey": [op.scope]}]
    elif op.auth == "customer":
        result["security"] = [{"customerToken": []}]
    else:
        result["security"] = []
    return result


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 description of every registered operation."""
    paths: dict[str, dict[str, Any]] = {}
    for op in sorted(OPERATIONS.values(), key=lambda o: (o.path, o.method)):
        paths.setdefault(op.path, {})[op.method.lower()] = _operation_object(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Herald integration API",
            "version": "1.0.0",
            "description": (
                "For call centres, CRMs and billing systems. Authenticate with "
                "'Authorization: Bearer <API key>' (keys are created by an administrator "
                "with 'herald api-keys create' and carry scopes). Every POST and PATCH "
                "accepts an Idempotency-Key header. Errors always have the shape "
                "{\"error\": {\"code\", \"message\", \"field\", \"request_id\"}}. Mobile apps "
                "use a customer token from POST /api/v1/session instead of an API key."),
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": name} for name in sorted({op.tag for op in OPERATIONS.values()})],
        "paths": paths,
        "webhooks": dict(WEBHOOKS),
        "components": {
            "schemas": {"Error": ERROR_SCHEMA, **COMPONENTS},
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "hk_…",
                           "description": "An API key. Scopes: " + "; ".join(
                               f"{k}: {v}" for k, v in SCOPES.items())},
                "customerToken": {"type": "http", "scheme": "bearer", "bearerFormat": "hct_…",
                                  "description": "A customer's own token from POST "
                                                 "/api/v1/session (expires; for the apps)."},
            },
        },
    }
