"""/api/v1 webhook endpoints: register where Herald posts which events, read the log, replay.

Admin keys only (the ``admin`` scope): an endpoint receives customers' names and
amounts. The secret that signs deliveries is in the answer to the POST and never
again. How receivers check signatures is in docs/api.md and the OpenAPI
description's ``webhooks`` section.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from distribution.webhook_endpoints import (
    EndpointError,
    register_endpoint,
    remove_endpoint,
    update_endpoint,
)
from distribution.webhook_models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookFormat,
)
from distribution.webhook_sender import SIGNATURE_HEADER, TOLERANCE_SECONDS, replay
from distribution.webhooks import EVENT_TYPES
from portal.api import bp
from portal.api.auth import current_caller
from portal.api.common import answer, decode_cursor, encode_cursor, not_found
from portal.api.errors import ApiError
from portal.api.spec import COMPONENTS, WEBHOOKS, Param, body, operation, query
from portal.db import db_session

TAG = "webhooks"
TYPES = {"type": "array", "minItems": 1, "uniqueItems": True,
         "items": {"enum": list(EVENT_TYPES)}}
FORMAT = {"enum": [f.value for f in WebhookFormat],
          "description": "herald: the signed JSON event; slack: {\"text\": ...} for a "
                         "Slack-compatible incoming webhook"}
URL = {"type": "string", "minLength": 1, "maxLength": 500,
       "description": "an https:// address (plain http only to this machine)"}
ENDPOINT_SCHEMA = {
    "type": "object",
    "required": ["id", "url", "event_types", "format", "enabled", "created_at"],
    "properties": {
        "id": {"type": "integer"}, "url": {"type": "string"},
        "description": {"type": "string"}, "event_types": TYPES, "format": FORMAT,
        "enabled": {"type": "boolean"}, "created_by": {"type": "string"},
        "created_at": {"type": "string"},
        "secret": {"type": "string", "description": "only in the answer that created it"}},
}
ATTEMPT_SCHEMA = {"type": "object", "properties": {
    "at": {"type": "string"}, "status_code": {"type": ["integer", "null"]},
    "duration_ms": {"type": "integer"}, "error": {"type": ["string", "null"]},
    "replay": {"type": "boolean"}}}
DELIVERY_SCHEMA = {
    "type": "object", "required": ["id", "event_id", "event_type", "state", "attempts"],
    "properties": {
        "id": {"type": "integer"}, "event_id": {"type": "string"},
        "event_type": {"type": "string"},
        "state": {"enum": ["pending", "sending", "succeeded", "failed", "cancelled"]},
        "attempts": {"type": "integer"}, "last_status": {"type": ["integer", "null"]},
        "last_error": {"type": ["string", "null"]},
        "next_attempt_at": {"type": ["string", "null"]}, "created_at": {"type": "string"},
        "attempt_log": {"type": "array", "items": ATTEMPT_SCHEMA}},
}
COMPONENTS.update(WebhookEndpoint=ENDPOINT_SCHEMA, WebhookDelivery=DELIVERY_SCHEMA)
_EVENT_BODY = {"type": "object", "required": ["id", "type", "created_at", "subject", "data"],
               "properties": {
                   "id": {"type": "string", "description": "evt_<id>: the same on a retry"},
                   "type": {"enum": list(EVENT_TYPES)},
                   "created_at": {"type": "string", "format": "date-time"},
                   "subject": {"type": "object", "properties": {
                       "type": {"type": "string"}, "key": {"type": "string"}}},
                   "data": {"type": "object"}}}
for _type in EVENT_TYPES:
    WEBHOOKS[_type] = {"post": {
        "summary": f"{_type} (to endpoints subscribed to it)",
        "description": (
            f"POSTed as JSON with '{SIGNATURE_HEADER}: t=<unix time>,v1=<hex HMAC-SHA256 of "
            f"\"<t>.<raw body>\" under the endpoint secret>'. Refuse a t more than "
            f"{TOLERANCE_SECONDS} seconds away. Headers Herald-Event-Type, Herald-Event-Id, "
            "Herald-Delivery-Id (drop repeats by it) and Herald-Attempt. Answer 2xx within "
            "10 seconds; anything else is retried with exponential backoff for 3 days. "
            "Slack-format endpoints receive {\"text\": \"...\"} instead."),
        "requestBody": {"content": {"application/json": {"schema": _EVENT_BODY}}},
        "responses": {"200": {"description": "Taken; any 2xx will do."}}}}


def endpoint_json(endpoint: WebhookEndpoint, secret: bool = False) -> dict:
    """An endpoint as the API shows it (the secret only when it was just made)."""
    shown = {"id": endpoint.id, "url": endpoint.url, "description": endpoint.description,
             "event_types": list(endpoint.event_types), "format": endpoint.format.value,
             "enabled": endpoint.enabled, "created_by": endpoint.created_by,
             "created_at": endpoint.created_at.isoformat()}
    if secret:
        shown["secret"] = endpoint.secret
    return shown


def delivery_json(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> dict:
    """A delivery and its attempts, oldest attempt first."""
    when = delivery.next_attempt_at if delivery.state.value == "pending" else None
    return {"id": delivery.id, "event_id": f"evt_{delivery.event_id}",
            "event_type": delivery.event_type, "state": delivery.state.value,
            "attempts": delivery.attempts, "last_status": delivery.last_status,
            "last_error": delivery.last_error,
            "next_attempt_at": when.isoformat() if when else None,
            "created_at": delivery.created_at.isoformat(),
            "attempt_log": [{"at": a.at.isoformat(), "status_code": a.status_code,
                             "duration_ms": a.duration_ms, "error": a.error,
                             "replay": a.replay} for a in attempts]}


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    found = db_session().get(WebhookEndpoint, endpoint_id)
    if found is None:
        raise not_found(f"webhook endpoint with id {endpoint_id}", "endpoint_id")
    return found


def _refused(error: EndpointError) -> ApiError:
    return ApiError(422, "invalid_value", f"{error}.", error.field)


ENDPOINT_REF = {"$ref": "#/components/schemas/WebhookEndpoint"}


@operation(bp, "/webhook-endpoints", "POST", tag=TAG, scope="admin",
           summary="Register a webhook endpoint",
           body={"type": "object", "additionalProperties": False,
                 "required": ["url", "event_types"],
                 "properties": {"url": URL, "event_types": TYPES, "format": FORMAT,
                                "description": {"type": "string", "maxLength": 200}}},
           responses={201: ("The endpoint, with its signing secret: keep it now, it is not "
                            "shown again.", ENDPOINT_REF)})
def create_endpoint():
    """Herald posts every later event of the chosen types to ``url``, signed with the
    secret in this answer."""
    data = body()
    try:
        endpoint = register_endpoint(
            db_session(), data["url"], data["event_types"], actor=current_caller().actor,
            body_format=WebhookFormat(data.get("format", "herald")),
            description=data.get("description", ""))
    except EndpointError as error:
        raise _refused(error) from None
    return answer(endpoint_json(endpoint, secret=True), 201,
                  location=f"/api/v1/webhook-endpoints/{endpoint.id}")


@operation(bp, "/webhook-endpoints", "GET", tag=TAG, scope="admin",
           summary="List webhook endpoints",
           responses={200: ("Every endpoint, oldest first (never their secrets).", {
               "type": "object", "required": ["data"],
               "properties": {"data": {"type": "array", "items": ENDPOINT_REF}}})})
def list_endpoints():
    """Every registered endpoint."""
    rows = db_session().scalars(sa.select(WebhookEndpoint).order_by(WebhookEndpoint.id))
    return answer({"data": [endpoint_json(e) for e in rows]})


@operation(bp, "/webhook-endpoints/<int:endpoint_id>", "GET", tag=TAG, scope="admin",
           summary="Get a webhook endpoint", responses={200: ("The endpoint.", ENDPOINT_REF)})
def get_endpoint(endpoint_id: int):
    """One endpoint (without its secret)."""
    return answer(endpoint_json(_endpoint(endpoint_id)))


@operation(bp, "/webhook-endpoints/<int:endpoint_id>", "PATCH", tag=TAG, scope="admin",
           summary="Change, disable or enable a webhook endpoint",
           body={"type": "object", "additionalProperties": False, "minProperties": 1,
                 "properties": {"url": URL, "event_types": TYPES, "format": FORMAT,
                                "description": {"type": "string", "maxLength": 200},
                                "enabled": {"type": "boolean"}}},
           responses={200: ("The endpoint after the change.", ENDPOINT_REF)})
def change_endpoint(endpoint_id: int):
    """A disabled endpoint gets nothing, and pending deliveries to it are cancelled;
    enabled again, it gets the events that follow, not those it missed."""
    data = body()
    endpoint = _endpoint(endpoint_id)
    try:
        update_endpoint(db_session(), endpoint, actor=current_caller().actor,
                        url=data.get("url"), event_types=data.get("event_types"),
                        body_format=WebhookFormat(data["format"]) if "format" in data else None,
                        description=data.get("description"), enabled=data.get("enabled"))
    except EndpointError as error:
        raise _refused(error) from None
    return answer(endpoint_json(endpoint))


@operation(bp, "/webhook-endpoints/<int:endpoint_id>", "DELETE", tag=TAG, scope="admin",
           summary="Remove a webhook endpoint",
           responses={204: ("Removed, with its delivery log.", None)})
def delete_endpoint(endpoint_id: int):
    """Nothing more is sent to it; the event log keeps that it existed."""
    remove_endpoint(db_session(), _endpoint(endpoint_id), actor=current_caller().actor)
    return "", 204


@operation(bp, "/webhook-endpoints/<int:endpoint_id>/deliveries", "GET", tag=TAG,
           scope="admin", summary="Read an endpoint's delivery log",
           query=[Param("state", {"enum": ["pending", "sending", "succeeded", "failed",
                                           "cancelled"]}, "only deliveries in this state"),
                  Param("limit", {"type": "integer", "minimum": 1, "maximum": 200},
                        "page size (default 50)"),
                  Param("cursor", {"type": "string", "maxLength": 100},
                        "next_cursor of the previous page")],
           responses={200: ("Deliveries, newest first, each with its attempts.", {
               "type": "object", "required": ["data", "next_cursor"],
               "properties": {"data": {"type": "array", "items": {
                   "$ref": "#/components/schemas/WebhookDelivery"}},
                   "next_cursor": {"type": ["string", "null"]}}})})
def list_deliveries(endpoint_id: int):
    """Attempts, status codes, response times and the next retry of each delivery."""
    endpoint = _endpoint(endpoint_id)
    params, session = query(), db_session()
    limit = params.get("limit", 50)
    stmt = sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if "state" in params:
        stmt = stmt.where(WebhookDelivery.state == params["state"])
    if "cursor" in params:
        stmt = stmt.where(WebhookDelivery.id < decode_cursor(params["cursor"]))
    page = list(session.scalars(stmt.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
    more = len(page) > limit
    page = page[:limit]
    attempts: dict[int, list[WebhookAttempt]] = {d.id: [] for d in page}
    if page:
        for attempt in session.scalars(sa.select(WebhookAttempt).where(
                WebhookAttempt.delivery_id.in_(list(attempts))).order_by(WebhookAttempt.id)):
            attempts[attempt.delivery_id].append(attempt)
    return answer({"data": [delivery_json(d, attempts[d.id]) for d in page],
                   "next_cursor": encode_cursor(page[-1].id) if more else None})


@operation(bp, "/webhook-endpoints/<int:endpoint_id>/deliveries/<int:delivery_id>/replay",
           "POST", tag=TAG, scope="admin", summary="Send one delivery again",
           responses={202: ("Queued: the same body, a fresh signature, a new retry period.",
                            {"$ref": "#/components/schemas/WebhookDelivery"})})
def replay_delivery(endpoint_id: int, delivery_id: int):
    """Send a delivery again (after the receiver was fixed, or to test it)."""
    session = db_session()
    endpoint = _endpoint(endpoint_id)
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise not_found(f"delivery {delivery_id} of this endpoint", "delivery_id")
    if not endpoint.enabled:
        raise ApiError(409, "endpoint_disabled", "This endpoint is disabled; enable it "
                       "(PATCH enabled=true) before replaying.", "endpoint_id")
    if not replay(session, delivery, actor=current_caller().actor):
        raise ApiError(409, "delivery_in_flight", "This delivery is being sent right now; "
                       "read its log in a minute and replay it then if needed.",
                       "delivery_id")
    queue_webhook_pass(session)
    attempts = list(session.scalars(sa.select(WebhookAttempt).where(
        WebhookAttempt.delivery_id == delivery.id).order_by(WebhookAttempt.id)))
    return answer(delivery_json(delivery, attempts), 202)


def queue_webhook_pass(session) -> None:
    """Ask the worker for a webhook pass once this request's transaction commits."""
    from portal.pay.recovery import after_commit

    task = current_app.extensions.get("herald.webhooks_now")
    if task is not None:
        after_commit(session, task)
