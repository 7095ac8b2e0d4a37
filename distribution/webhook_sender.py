"""Sending webhook deliveries: signed, retried with exponential backoff for days, logged.

Each request carries ``Herald-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" under the endpoint's secret>``; receivers recompute it, compare in
constant time and refuse a ``t`` older than a few minutes (:data:`TOLERANCE_SECONDS`).
A delivery is claimed (a conditional UPDATE to ``sending`` with a lease) and
committed before the request is made, and its outcome recorded afterwards, so no
transaction is open while waiting on a receiver. A worker that dies mid-request
leaves the lease to expire and the delivery is sent again: delivery is at least
once, and ``Herald-Delivery-Id`` lets receivers drop a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from distribution.events import record_event
from distribution.sqltypes import utcnow
from distribution.webhook_models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryState,
    WebhookEndpoint,
)
from distribution.webhooks import fan_out

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Herald-Signature"
TOLERANCE_SECONDS = 300  # what receivers should accept; documented in docs/api.md
RETRY_PERIOD = timedelta(days=3)
FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=6)
SEND_LEASE = timedelta(minutes=2)
TIMEOUT_SECONDS = 10.0
CLAIM_BATCH = 20
CONCURRENCY = 8  # requests in flight per pass; a batch takes at most one timeout or so
USER_AGENT = "Herald-Webhooks/1"
ACTOR = "worker:webhooks"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Herald-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt: 30 s doubling, at most 6 h."""
    return min(FIRST_BACKOFF * (2 ** max(attempts - 1, 0)), MAX_BACKOFF)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery claimed for one attempt, with what is needed to send it."""

    delivery_id: int
    event_id: int
    event_type: str
    url: str
    secret: str
    body: str
    attempt: int
    replay: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got back: a status code, or an error when there was no answer."""

    status_code: int | None
    duration_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        """The receiver took it (any 2xx)."""
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    """Claims due deliveries, sends them and records each attempt; opens its own sessions."""

    def __init__(self, make_session: sessionmaker[Session], *,
                 http: requests.Session | None = None, timeout: float = TIMEOUT_SECONDS,
                 clock: Callable[[], datetime] = utcnow, concurrency: int = CONCURRENCY) -> None:
        self.make_session = make_session
        self.concurrency = concurrency
        self.http = http or requests.Session()
        self.timeout = timeout
        self.clock = clock

    def fan_out(self, budget_seconds: float = 20.0) -> int:
        """Turn new events into deliveries, one committed window at a time."""
        made, deadline = 0, time.monotonic() + budget_seconds
        while True:
            with self.make_session() as session, session.begin():
                count, caught_up = fan_out(session, now=self.clock())
            made += count
            if caught_up or time.monotonic() >= deadline:
                return made

    def run(self, budget_seconds: float = 45.0) -> dict[str, int]:
        """Send what is due until nothing is or the budget is spent; returns counts."""
        counts = {"succeeded": 0, "retrying": 0, "failed": 0}
        deadline = time.monotonic() + budget_seconds
        while time.monotonic() < deadline:
            batch = self.claim()
            if not batch:
                break
            # Receivers answer slowly (up to the timeout): the batch's requests go out side by
            # side, and each outcome is recorded in a short transaction of its own.
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(batch))) as pool:
                outcomes = list(pool.map(self.attempt, batch))
            for claimed, outcome in zip(batch, outcomes, strict=True):
                state = self.record(claimed, outcome)
                key = {WebhookDeliveryState.SUCCEEDED: "succeeded",
                       WebhookDeliveryState.FAILED: "failed"}.get(state, "retrying")
                counts[key] += 1
        return counts

    def claim(self, limit: int = CLAIM_BATCH) -> list[Claimed]:
        """Due deliveries, marked ``sending`` and committed; those of disabled endpoints are
        cancelled instead."""
        now = self.clock()
        with self.make_session() as session, session.begin():
            due = sa.or_(
                sa.and_(WebhookDelivery.state == WebhookDeliveryState.PENDING,
                        WebhookDelivery.next_attempt_at <= now),
                sa.and_(WebhookDelivery.state == WebhookDeliveryState.SENDING,
                        WebhookDelivery.lease_until < now))
            query = (sa.select(WebhookDelivery.id).where(due)
                     .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit))
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(session.scalars(query))
            if not ids:
                return []
            rows = session.execute(
                sa.select(WebhookDelivery, WebhookEndpoint)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.id.in_(ids)).order_by(WebhookDelivery.id)).all()
            claimed: list[Claimed] = []
            for delivery, endpoint in rows:
                if not endpoint.enabled:
                    delivery.state = WebhookDeliveryState.CANCELLED
                    delivery.completed_at, delivery.lease_until = now, None
                    continue
                delivery.state = WebhookDeliveryState.SENDING
                delivery.lease_until = now + SEND_LEASE
                delivery.attempts += 1
                claimed.append(Claimed(delivery.id, delivery.event_id, delivery.event_type,
                                       endpoint.url, endpoint.secret, delivery.body,
                                       delivery.attempts, delivery.replayed_at is not None))
            return claimed

    def attempt(self, claimed: Claimed) -> Outcome:
        """POST the delivery once; never raises for what the receiver or network does."""
        body = claimed.body.encode()
        timestamp = int(self.clock().timestamp())
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   SIGNATURE_HEADER: sign(claimed.secret, timestamp, body),
                   "Herald-Event-Type": claimed.event_type,
                   "Herald-Event-Id": f"evt_{claimed.event_id}",
                   "Herald-Delivery-Id": str(claimed.delivery_id),
                   "Herald-Attempt": str(claimed.attempt)}
        started = time.perf_counter()
        try:
            response = self.http.post(claimed.url, data=body, headers=headers,
                                      timeout=self.timeout, allow_redirects=False)
            status, error = response.status_code, None
            response.close()
        except requests.RequestException as exc:
            # The exception's class names the failure; its text may hold the URL's query.
            status, error = None, type(exc).__name__
        duration = int((time.perf_counter() - started) * 1000)
        if error is None and not 200 <= status < 300:
            error = f"HTTP {status}"
        return Outcome(status, duration, error)

    def record(self, claimed: Claimed, outcome: Outcome) -> WebhookDeliveryState | None:
        """Log the attempt and move the delivery on: succeeded, retried later, or failed."""
        now = self.clock()
        with self.make_session() as session, session.begin():
            delivery = session.get(WebhookDelivery, claimed.delivery_id)
            if delivery is None:
                return None  # its endpoint was removed meanwhile
            session.add(WebhookAttempt(delivery_id=delivery.id, at=now,
                                       status_code=outcome.status_code,
                                       duration_ms=outcome.duration_ms, error=outcome.error,
                                       replay=claimed.replay))
            if delivery.state is not WebhookDeliveryState.SENDING:
                return delivery.state  # cancelled or replayed meanwhile: leave it
            delivery.last_status, delivery.last_error = outcome.status_code, outcome.error
            delivery.lease_until = None
            if outcome.ok:
                delivery.state, delivery.completed_at = WebhookDeliveryState.SUCCEEDED, now
                delivery.next_attempt_at = None
                return delivery.state
            retry_at = now + backoff(delivery.attempts)
            if retry_at > delivery.series_started_at + RETRY_PERIOD:
                delivery.state, delivery.completed_at = WebhookDeliveryState.FAILED, now
                delivery.next_attempt_at = None
                record_event(session, "webhook_delivery", str(delivery.id),
                             "webhook_delivery.failed",
                             {"endpoint_id": delivery.endpoint_id, "attempts": delivery.attempts,
                              "last_error": outcome.error}, actor=ACTOR)
            else:
                delivery.state, delivery.next_attempt_at = WebhookDeliveryState.PENDING, retry_at
            return delivery.state


def replay(session: Session, delivery: WebhookDelivery, *, actor: str) -> bool:
    """Send a delivery again from now on, with a fresh retry period; False while it is
    being sent (a replay then would race the attempt in flight)."""
    if delivery.state is WebhookDeliveryState.SENDING:
        return False
    now = utcnow()
    delivery.state = WebhookDeliveryState.PENDING
    delivery.next_attempt_at = now
    delivery.series_started_at = delivery.replayed_at = now
    delivery.completed_at = None
    record_event(session, "webhook_delivery", str(delivery.id), "webhook_delivery.replayed",
                 {"endpoint_id": delivery.endpoint_id, "event_id": delivery.event_id},
                 actor=actor)
    session.flush()
    return True


def backlog(session: Session) -> int:
    """Deliveries waiting to be sent (pending or being sent)."""
    return session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery).where(
        WebhookDelivery.state.in_((WebhookDeliveryState.PENDING,
                                   WebhookDeliveryState.SENDING)))) or 0
