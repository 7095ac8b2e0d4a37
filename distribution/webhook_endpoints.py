"""Managing webhook endpoints: register, change, enable or disable, remove; each step logged.

Used by the API and the ops console alike; services take a session and never commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.events import record_event
from distribution.sqltypes import utcnow
from distribution.webhook_models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookFormat,
)
from distribution.webhooks import EVENT_TYPES, newest_event_id

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
# Plain http is allowed to the machine itself only (a local relay, tests); anything that
# crosses a network gets TLS, since the body names customers and amounts.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class EndpointError(ValueError):
    """An endpoint cannot be registered or changed as asked; ``field`` says which input."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def check_url(url: str) -> str:
    """``url`` when Herald may post to it (https, or http to loopback)."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise EndpointError("url is not a valid address", "url") from None
    if len(url) > 500 or not host or parts.username or parts.password:
        raise EndpointError("url must be an address of at most 500 characters, without "
                            "user name or password", "url")
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return url
    raise EndpointError("url must start with https:// (plain http only to this machine)",
                        "url")


def check_event_types(event_types: Iterable[str]) -> list[str]:
    """The subscribed types in the canonical order; at least one, all known."""
    wanted = set(event_types)
    unknown = sorted(wanted - set(EVENT_TYPES))
    if unknown or not wanted:
        raise EndpointError("event_types must be some of " + ", ".join(EVENT_TYPES)
                            + (f"; {', '.join(unknown)} is not one" if unknown else ""),
                            "event_types")
    return [kind for kind in EVENT_TYPES if kind in wanted]


def register_endpoint(session: Session, url: str, event_types: Iterable[str], *,
                      actor: str, body_format: WebhookFormat = WebhookFormat.HERALD,
                      description: str = "") -> WebhookEndpoint:
    """A new enabled endpoint with a fresh secret (show ``endpoint.secret`` once)."""
    description = (description or "").strip()
    if len(description) > 200:
        raise EndpointError("description must be at most 200 characters", "description")
    endpoint = WebhookEndpoint(
        url=check_url(url), event_types=check_event_types(event_types), format=body_format,
        description=description, secret=SECRET_PREFIX + secrets.token_urlsafe(32),
        enabled=True, after_event_id=newest_event_id(session), created_by=actor)
    session.add(endpoint)
    session.flush()
    record_event(session, "webhook_endpoint", str(endpoint.id), "webhook_endpoint.registered",
                 _described(endpoint), actor=actor)
    return endpoint


def update_endpoint(session: Session, endpoint: WebhookEndpoint, *, actor: str,
                    url: str | None = None, event_types: Iterable[str] | None = None,
                    body_format: WebhookFormat | None = None, description: str | None = None,
                    enabled: bool | None = None) -> WebhookEndpoint:
    """Change what is given. Re-enabling starts after the newest event: what happened while
    the endpoint was off is not sent."""
    before, before_url = _described(endpoint), endpoint.url
    if url is not None:
        endpoint.url = check_url(url)
    if event_types is not None:
        endpoint.event_types = check_event_types(event_types)
    if body_format is not None:
        endpoint.format = body_format
    if description is not None:
        if len(description.strip()) > 200:
            raise EndpointError("description must be at most 200 characters", "description")
        endpoint.description = description.strip()
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        if enabled:
            endpoint.after_event_id = newest_event_id(session)
    after = _described(endpoint)
    if after != before or endpoint.url != before_url:
        endpoint.updated_at = utcnow()
        session.flush()
        record_event(session, "webhook_endpoint", str(endpoint.id), "webhook_endpoint.changed",
                     {"before": before, "after": after}, actor=actor)
    return endpoint


def remove_endpoint(session: Session, endpoint: WebhookEndpoint, *, actor: str) -> None:
    """Delete the endpoint with its deliveries and their log; the event log keeps the fact."""
    record_event(session, "webhook_endpoint", str(endpoint.id), "webhook_endpoint.removed",
                 _described(endpoint), actor=actor)
    delivery_ids = sa.select(WebhookDelivery.id).where(
        WebhookDelivery.endpoint_id == endpoint.id).scalar_subquery()
    # Explicit deletes: SQLite enforces ON DELETE CASCADE, but the ORM must not be left
    # holding rows that are gone.
    session.execute(sa.delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids)))
    session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    session.delete(endpoint)
    session.flush()


def url_origin(url: str) -> str:
    """Scheme, host and port only: a Slack webhook URL's path is itself a secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _described(endpoint: WebhookEndpoint) -> dict:
    # Never the secret nor the URL's path (a Slack URL is a credential): this goes into
    # the event log.
    return {"url": url_origin(endpoint.url), "event_types": list(endpoint.event_types),
            "format": endpoint.format.value, "enabled": endpoint.enabled,
            "description": endpoint.description}
