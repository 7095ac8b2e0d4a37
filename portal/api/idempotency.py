"""Idempotency-Key: a retried POST or PATCH acts once and gets the first answer again.

The key is claimed by inserting a unique (caller, key) row in a transaction of
its own, committed before the request acts. A request that finds the row:

* with a different body (SHA-256 of method, path and canonical JSON) is refused, 422;
* finished, gets the stored answer (status, body, Location) replayed;
* still in progress, waits a few seconds for it to finish, else is told 409.

The answer is stored in the request's own transaction, together with what the
request did, so either both are committed or neither. An error answer (4xx/5xx)
changes nothing, so the claim is released and the caller may retry with the same key.
Rows are kept at least 24 hours (:func:`purge`).
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta

import sqlalchemy as sa
from flask import Response, g, request
from sqlalchemy.orm import Session

from portal.api.errors import ApiError
from portal.db import db_session, get_database
from portal.models import IdempotencyRecord
from portal.models.base import utcnow

HEADER = "Idempotency-Key"
KEEP = timedelta(hours=24)
WAIT_SECONDS = 10.0
REPLAYED_HEADER = "Idempotent-Replayed"


def request_digest() -> str:
    """SHA-256 over the method, the path and the body (JSON in canonical form)."""
    data = request.get_data()
    try:
        canonical = json.dumps(json.loads(data or b"null"), sort_keys=True,
                               separators=(",", ":")).encode()
    except (ValueError, RecursionError):  # the body's own check answers for it
        canonical = data
    return hashlib.sha256(f"{request.method} {request.path}\n".encode() + canonical).hexdigest()


def begin(caller: str) -> Response | None:
    """Claim the request's Idempotency-Key, or answer for it (replay, 409, 422)."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise ApiError(422, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 "
                       "printable characters (a call ID or a UUID fits).", HEADER)
    digest = request_digest()
    database = get_database()
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            with database.session_scope() as session:
                record = IdempotencyRecord(caller=caller, key=key, request_sha256=digest,
                                           method=request.method, path=request.path[:500])
                session.add(record)
                session.flush()
            g.api_idempotency_id = record.id
            return None
        except sa.exc.IntegrityError:
            pass
        with database.session_scope() as session:
            found = session.scalars(sa.select(IdempotencyRecord).where(
                IdempotencyRecord.caller == caller, IdempotencyRecord.key == key)).first()
            if found is None:
                continue  # released in between: claim it again
            if found.request_sha256 != digest:
                raise ApiError(422, "idempotency_key_reused", f"This Idempotency-Key was used "
                               f"for a different request ({found.method} {found.path} with "
                               "another body); send a new key for a new request.", HEADER)
            if found.state == "done":
                return replay(found)
        if time.monotonic() >= deadline:
            raise ApiError(409, "idempotency_in_progress", "A request with this "
                           "Idempotency-Key is still being handled; retry in a second with "
                           "the same key to get its answer.", HEADER,
                           headers={"Retry-After": "1"})
        time.sleep(0.05)


def replay(record: IdempotencyRecord) -> Response:
    """The stored answer of a finished request."""
    response = Response(record.response_body or "", status=record.response_status,
                        mimetype="application/json")
    if record.response_location:
        response.headers["Location"] = record.response_location
    response.headers[REPLAYED_HEADER] = "true"
    return response


def finish(response: Response) -> None:
    """Store a successful answer in the request's transaction (committed with its effect)."""
    record_id = g.get("api_idempotency_id")
    if record_id is None or response.status_code >= 400:
        return
    session = db_session()
    session.execute(sa.update(IdempotencyRecord).where(IdempotencyRecord.id == record_id).values(
        state="done", response_status=response.status_code,
        response_body=response.get_data(as_text=True),
        response_location=response.headers.get("Location"), completed_at=utcnow()))


def release() -> None:
    """Drop the claim when the request did not finish (error answer, or its commit failed)."""
    record_id = g.pop("api_idempotency_id", None)
    if record_id is None:
        return
    with get_database().session_scope() as session:
        session.execute(sa.delete(IdempotencyRecord).where(
            IdempotencyRecord.id == record_id, IdempotencyRecord.state == "in_progress"))


def purge(session: Session, older_than: timedelta = KEEP) -> int:
    """Delete records older than ``older_than`` (never less than 24 hours); returns how many."""
    cutoff = utcnow() - max(older_than, KEEP)
    return session.execute(sa.delete(IdempotencyRecord).where(
        IdempotencyRecord.created_at < cutoff)).rowcount
