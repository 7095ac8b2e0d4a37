"""``/metrics``: Herald's state in the Prometheus text exposition format.

Every value is read from the database (or the queue) at scrape time by one
custom collector, so web processes keep no counters of their own and any of
them answers for the whole installation. Served only with the configured
``METRICS_TOKEN`` as a Bearer token, or, when ``METRICS_ALLOW_LOOPBACK`` is set, to a
loopback client. Loopback is judged on the real client: behind a trusted proxy
(``TRUSTED_PROXIES``, :mod:`portal.proxy`) the address it names; a request that a
proxy forwarded without naming the client, or that carries forwarding headers from
a peer Herald does not trust, is refused, since behind a proxy on the same host
every client would look like loopback.
"""

from __future__ import annotations

import hmac
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from distribution.deliveries import Delivery, DeliveryState
from distribution.dispatcher import ADVISORY_LOCK_ID
from distribution.events import Event, EventChainHead
from distribution.models import WorkerHeartbeat
from distribution.recipients import Address
from distribution.sqltypes import utcnow
from distribution.waves import Wave, WaveState
from distribution.webhook_sender import backlog as webhook_backlog
from portal.db import get_database
from portal.ops.failure_reasons import reason_class
from portal.proxy import client_resolved

bp = Blueprint("metrics", __name__)
log = logging.getLogger(__name__)

RELEASE_WINDOWS = {"1m": timedelta(minutes=1), "5m": timedelta(minutes=5)}
# Workers not seen for a day are gone (restarted under another pid); they are not reported.
HEARTBEAT_HORIZON = timedelta(days=1)
LOOPBACK = frozenset({"127.0.0.1", "::1"})
PROXY_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


@bp.route("/metrics")
def metrics() -> Response:
    """The scrape: 404 to anyone not allowed (so the endpoint's existence is not advertised)."""
    settings = current_app.config["HERALD"]
    if not allowed(settings.metrics_token, allow_loopback=settings.metrics_allow_loopback):
        abort(404)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HeraldCollector(current_app._get_current_object()))
    response = Response(generate_latest(registry), mimetype=None)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    response.headers["Cache-Control"] = "no-store"
    return response


def allowed(token: str | None, *, allow_loopback: bool = False) -> bool:
    """True when the request carries the configured token, or, if ``allow_loopback``,
    when its real client is on this host."""
    if token:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                               token.encode()):
            return True
    if not allow_loopback:
        return False
    resolved = client_resolved(request.environ)
    if resolved is None and any(name in request.headers for name in PROXY_HEADERS):
        return False  # forwarded by a proxy Herald was not told to trust
    return resolved is not False and request.remote_addr in LOOPBACK


class HeraldCollector:
    """Reads every metric from the database in one short session per scrape."""

    def __init__(self, app) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        """Yield each metric family; a part that cannot be read is left out, not faked."""
        yield from self._queue()
        with get_database(self.app).sessionmaker() as session:
            yield from database_metrics(session)

    def _queue(self) -> Iterator[Metric]:
        from portal.queue import get_huey

        try:
            depth = get_huey(self.app).pending_count()
        except Exception:  # a queue that cannot be read is reported as down
            log.warning("metrics: the task queue could not be read", exc_info=True)
            up = GaugeMetricFamily("herald_queue_up", "1 when the task queue answered the scrape")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("herald_queue_up", "1 when the task queue answered the scrape")
        up.add_metric([], 1)
        yield up
        gauge = GaugeMetricFamily("herald_queue_depth",
                                  "Tasks waiting in the Huey queue (not yet taken by a worker)")
        gauge.add_metric([], depth)
        yield gauge


def first_event_id_since(session: Session, cutoff: datetime, *, start: int | None = None) -> int:
    """The lowest event id at or after ``cutoff`` (past the newest id when there is none).

    Events get their time after the chain head is locked, so time grows with the id;
    a binary search over the primary key finds the boundary in a few dozen index
    lookups instead of scanning the whole log on every scrape.
    """
    low = start if start is not None else session.scalar(sa.select(sa.func.min(Event.id))) or 0
    high = (session.scalar(sa.select(sa.func.max(Event.id))) or 0) + 1
    while low < high:
        middle = (low + high) // 2
        at = session.scalar(sa.select(Event.at).where(Event.id >= middle)
                            .order_by(Event.id).limit(1))
        if at is None or at >= cutoff:
            high = middle
        else:
            low = middle + 1
    return low


def database_metrics(session: Session) -> Iterator[Metric]:
    """The metric families read from the database."""
    now = utcnow()

    deliveries = GaugeMetricFamily("herald_deliveries", "Deliveries by state and channel",
                                   labels=["state", "channel"])
    rows = session.execute(sa.select(Delivery.state, Delivery.channel, sa.func.count())
                           .group_by(Delivery.state, Delivery.channel)).all()
    for state, channel, count in sorted(rows, key=lambda r: (r[0].value, r[1].value)):
        deliveries.add_metric([state.value, channel.value], count)
    yield deliveries

    released = GaugeMetricFamily(
        "herald_deliveries_released", "Deliveries released by the dispatcher within the window "
        "(from the event log); divide by the window for a rate", labels=["window"])
    floor = None
    for name, width in sorted(RELEASE_WINDOWS.items(), key=lambda item: -item[1]):
        floor = first_event_id_since(session, now - width, start=floor)
        released.add_metric([name], session.scalar(
            sa.select(sa.func.count()).select_from(Event)
            .where(Event.id >= floor, Event.kind == "delivery.released",
                   Event.at >= now - width)))
    yield released

    failures = GaugeMetricFamily(
        "herald_delivery_failures", "Failed and in-doubt deliveries by reason class (as the "
        "ops console's failures page groups them)", labels=["reason"])
    counts: Counter[str] = Counter()
    failed = session.execute(
        sa.select(Delivery.state, Delivery.last_error, Address.dead_since.is_not(None),
                  sa.func.count())
        .outerjoin(Address, Address.id == Delivery.address_id)
        .where(Delivery.state.in_((DeliveryState.FAILED, DeliveryState.IN_DOUBT)))
        .group_by(Delivery.state, Delivery.last_error, Address.dead_since.is_not(None))).all()
    for state, error, dead, count in failed:
        counts[reason_class(error, state=state.value, address_dead=bool(dead))] += count
    for reason in sorted(counts):
        failures.add_metric([reason], counts[reason])
    yield failures

    waves = GaugeMetricFamily("herald_waves", "Waves by state", labels=["state"])
    by_state = dict(session.execute(sa.select(Wave.state, sa.func.count())
                                    .group_by(Wave.state)).all())
    for state in WaveState:
        waves.add_metric([state.value], by_state.get(state, 0))
    yield waves

    beats = GaugeMetricFamily("herald_worker_heartbeat_age_seconds",
                              "Seconds since each worker (host:pid) last ran its heartbeat "
                              "task; workers unseen for a day are left out", labels=["worker"])
    for beat in session.scalars(sa.select(WorkerHeartbeat)
                                .where(WorkerHeartbeat.last_seen_at >= now - HEARTBEAT_HORIZON)
                                .order_by(WorkerHeartbeat.worker)):
        beats.add_metric([beat.worker], (now - beat.last_seen_at).total_seconds())
    yield beats

    if session.bind.dialect.name == "postgresql":
        lock = GaugeMetricFamily(
            "herald_dispatcher_lock_held", "1 when a dispatcher holds the advisory lock of this "
            "schema (pg_locks); 0 means no dispatcher is releasing")
        lock.add_metric([], session.scalar(sa.text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid = :id AND objsubid = 2 "
            "AND objid::bigint = (hashtext(current_schema())::bigint & 4294967295)"),
            {"id": ADVISORY_LOCK_ID}))
        yield lock

    head = session.get(EventChainHead, 1)
    events = GaugeMetricFamily("herald_event_log_events",
                               "Events in the hash-chained event log (from its chain head)")
    events.add_metric([], head.count if head is not None else 0)
    yield events

    backlog = GaugeMetricFamily(
        "herald_webhook_backlog", "Webhooks not yet handled. provider=stripe: payment provider "
        "events received but not processed, always 0 (Herald handles each Stripe event within "
        "the webhook request, recorded in processed_provider_events, and Stripe retries what "
        "was not answered with 2xx). provider=outbound: Herald's own webhook deliveries "
        "waiting to be sent or retried", labels=["provider"])
    backlog.add_metric(["stripe"], 0)
    backlog.add_metric(["outbound"], webhook_backlog(session))
    yield backlog
