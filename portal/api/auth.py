"""Who is calling /api/v1: an API key (scoped, rate-limited) or a customer's app token.

The look-up, the rate-limit count and the last-used time are written in a short
transaction of their own, committed before the view runs, so refused requests
still count and the request's own transaction holds no lock while they are made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app, g, request
from sqlalchemy.orm import Session

from portal.api.errors import ApiError
from portal.api.keys import find_customer_token, find_key
from portal.api.spec import Operation
from portal.db import get_database
from portal.models import ApiKey, User
from portal.models.api import ApiRateWindow
from portal.models.base import utcnow


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of this request."""

    caller: str  # "key:<id>" or "customer:<user id>"; idempotency keys are per caller
    actor: str  # how events name it
    scopes: frozenset[str]
    key_id: int | None = None
    user_id: int | None = None
    customer_id: int | None = None


def current_caller() -> Caller:
    """The caller of the current request (set by :func:`authenticate`)."""
    return g.api_caller


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise ApiError(401, "unauthenticated", "Send 'Authorization: Bearer <key>'; this "
                       "request has no bearer credential.", "Authorization",
                       headers={"WWW-Authenticate": 'Bearer realm="herald"'})
    return credential.strip()


def authenticate(op: Operation) -> None:
    """Check the credential, the scope and the rate limit; raise ApiError when refused."""
    if op.auth == "none":
        return
    credential = _bearer()
    settings = current_app.config["HERALD"]
    retry_after = None
    with get_database().session_scope() as session:
        if op.auth == "customer":
            token = find_customer_token(session, credential)
            user = session.get(User, token.user_id) if token else None
            if token is None or user is None or not user.active or user.customer_id is None:
                raise _invalid("customer token")
            token.last_used_at = utcnow()
            g.api_caller = Caller(f"customer:{user.id}", f"customer:{user.id}", frozenset(),
                                  user_id=user.id, customer_id=user.customer_id)
            return
        key = find_key(session, credential)
        if key is None:
            raise _invalid("API key")
        if op.scope not in key.scope_set:
            raise ApiError(403, "missing_scope", f"This key lacks the '{op.scope}' scope; ask an "
                           f"administrator for a key with it ('herald api-keys create --scope "
                           f"{op.scope}').", "Authorization")
        limit = key.rate_limit or settings.api_rate_limit  # the key's own, else the default
        count, retry_after = count_request(session, key, limit,
                                           settings.api_rate_window_seconds)
        key.last_used_at = utcnow()
        g.api_caller = Caller(f"key:{key.id}", key.actor, key.scope_set, key_id=key.id)
        g.api_rate = (limit, max(0, limit - count))
    if retry_after is not None:
        raise ApiError(429, "rate_limited", f"This key made more than {limit} "
                       f"requests in {settings.api_rate_window_seconds} seconds; retry after "
                       f"{retry_after} seconds.", headers={"Retry-After": str(retry_after)})


def _invalid(what: str) -> ApiError:
    return ApiError(401, "unauthenticated", f"The {what} is unknown, expired or revoked; send "
                    "a valid one as 'Authorization: Bearer <key>'.", "Authorization",
                    headers={"WWW-Authenticate": 'Bearer realm="herald", error="invalid_token"'})


def count_request(session: Session, key: ApiKey, limit: int, window: int,
                  now: float | None = None) -> tuple[int, int | None]:
    """Count one request in the key's current fixed window.

    Returns the count so far and, when it is over ``limit``, the seconds until the
    window ends (for Retry-After). The increment is one UPDATE, so concurrent
    requests never lose a count; the first of a window inserts the row.
    """
    now = time.time() if now is None else now
    start = int(now // window * window)
    where = (ApiRateWindow.api_key_id == key.id, ApiRateWindow.window_start == start)
    bump = sa.update(ApiRateWindow).where(*where).values(count=ApiRateWindow.count + 1)
    if session.execute(bump).rowcount == 0:
        try:
            with session.begin_nested():
                session.add(ApiRateWindow(api_key_id=key.id, window_start=start, count=1))
        except sa.exc.IntegrityError:
            session.execute(bump)  # another request inserted it first
    count = session.scalar(sa.select(ApiRateWindow.count).where(*where))
    if count > limit:
        return count, max(1, int(start + window - now + 0.999))
    return count, None


def purge_rate_windows(session: Session, now: float | None = None, keep_seconds: int = 3600
                       ) -> int:
    """Delete request counts of windows that ended long ago."""
    cutoff = int((time.time() if now is None else now) - keep_seconds)
    return session.execute(sa.delete(ApiRateWindow).where(
        ApiRateWindow.window_start < cutoff)).rowcount
