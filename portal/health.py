"""``/healthz``: is the database reachable, is a worker alive."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from distribution.sqltypes import utcnow
from distribution.worker import latest_heartbeat
from portal.db import db_session

bp = Blueprint("health", __name__)

# The heartbeat task runs every minute; two missed beats mean no worker is consuming.
WORKER_STALE_AFTER = timedelta(minutes=2, seconds=30)


@bp.route("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the database answers; the body says whether a worker was seen recently."""
    session = db_session()
    try:
        session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return jsonify(status="error", database="unreachable"), 503
    beat = latest_heartbeat(session)
    worker = {"status": "never seen"}
    if beat is not None:
        fresh = utcnow() - beat.last_seen_at < WORKER_STALE_AFTER
        worker = {"status": "ok" if fresh else "stale", "name": beat.worker,
                  "last_seen_at": beat.last_seen_at.isoformat()}
    return jsonify(status="ok", database="ok", worker=worker), 200
