"""Sign-in sessions: one row per signed-in browser, ended from the Devices page.

Flask-Login keeps ``"<row id>:<secret>"`` in the session (and remember) cookie;
the row stores the secret's digest. A session stops working when it is ended,
when it has not been used for the idle time, or when it reaches its absolute
lifetime, whichever comes first.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from distribution.events import record_event
from portal.config import Settings
from portal.models import SignInSession, User
from portal.models.base import utcnow

# last_seen_at is written at most this often, so reading pages does not write on every request.
TOUCH_INTERVAL = timedelta(minutes=1)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def user_subject(user: User | int) -> tuple[str, str]:
    """The event subject of a user: ("user", "<id>")."""
    return "user", str(user if isinstance(user, int) else user.id)


def summarise_user_agent(header: str | None) -> str:
    """A short, human description of a browser ("Firefox on Android"), never the raw header."""
    ua = header or ""
    browser = next((name for pattern, name in (
        (r"Edg/", "Edge"), (r"OPR/|Opera", "Opera"), (r"Firefox/", "Firefox"),
        (r"Chrome/|CriOS/", "Chrome"), (r"Safari/", "Safari")) if re.search(pattern, ua)),
        None)
    system = next((name for pattern, name in (
        (r"Android", "Android"), (r"iPhone|iPad|iOS", "iOS"), (r"Windows", "Windows"),
        (r"Mac OS X|Macintosh", "macOS"), (r"Linux", "Linux")) if re.search(pattern, ua)),
        None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown browser"


def start_session(session: Session, user: User, settings: Settings, *, ip: str | None,
                  user_agent: str | None, method: str, remember: bool = False) -> str:
    """Create a session row for ``user``, record the sign-in and return the Flask-Login id.

    A remembered session ("keep me signed in") has no idle limit and lives
    ``sign_in_remember_days``; others end after ``sign_in_idle_minutes`` unused and
    ``session_lifetime_minutes`` in any case.
    """
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    lifetime = timedelta(days=settings.sign_in_remember_days) if remember \
        else timedelta(minutes=settings.session_lifetime_minutes)
    row = SignInSession(user_id=user.id, secret_sha256=_digest(secret), created_at=now,
                        last_seen_at=now, expires_at=now + lifetime, remembered=remember,
                        ip_address=(ip or "")[:45] or None,
                        user_agent=summarise_user_agent(user_agent)[:120], method=method)
    session.add(row)
    user.last_login_at = now
    session.flush()
    record_event(session, *user_subject(user), "auth.signed_in",
                 {"session_id": row.id, "method": method, "ip": row.ip_address,
                  "user_agent": row.user_agent, "remembered": remember},
                 actor=f"user:{user.id}")
    login_id = f"{row.id}:{secret}"
    user.login_id = login_id
    return login_id


def session_for(session: Session, login_id: str, settings: Settings) -> SignInSession | None:
    """The live session row a Flask-Login id names; ends it when it has expired."""
    row_id, _sep, secret = login_id.partition(":")
    if not row_id.isdigit() or not secret or len(secret) > 100:
        return None
    # The user, and a customer's own record (its language picks the page's), are read
    # on every signed-in request: one statement for all three.
    row = session.get(SignInSession, int(row_id),
                      options=[joinedload(SignInSession.user).joinedload(User.customer)])
    if row is None or row.ended_at is not None \
            or not secrets.compare_digest(row.secret_sha256, _digest(secret)):
        return None
    now = utcnow()
    if now >= row.expires_at:
        end_session(session, row, "expired", actor="system:sign-in")
        return None
    if is_idle(row, settings, now):
        end_session(session, row, "idle", actor="system:sign-in")
        return None
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        row.last_seen_at = now
    return row


def end_session(session: Session, row: SignInSession, reason: str, *, actor: str) -> None:
    """End one session (its browser is signed out at its next request) and record it."""
    if row.ended_at is not None:
        return
    row.ended_at = utcnow()
    row.ended_reason = reason
    session.flush()
    record_event(session, *user_subject(row.user_id), "auth.session_ended",
                 {"session_id": row.id, "reason": reason}, actor=actor)


def active_sessions(session: Session, user: User, settings: Settings) -> list[SignInSession]:
    """The user's sessions that still work, most recently used first."""
    now = utcnow()
    rows = session.scalars(sa.select(SignInSession).where(
        SignInSession.user_id == user.id, SignInSession.ended_at.is_(None),
        SignInSession.expires_at > now).order_by(SignInSession.last_seen_at.desc(),
                                                 SignInSession.id.desc()))
    return [row for row in rows if not is_idle(row, settings, now)]


def end_other_sessions(session: Session, user: User, keep_id: int | None, reason: str, *,
                       actor: str) -> int:
    """End every live session of ``user`` except ``keep_id``; returns how many ended."""
    ended = 0
    for row in session.scalars(sa.select(SignInSession).where(
            SignInSession.user_id == user.id, SignInSession.ended_at.is_(None))):
        if row.id != keep_id:
            end_session(session, row, reason, actor=actor)
            ended += 1
    return ended


def current_session_id(user: User) -> int | None:
    """The session row id the signed-in user is using right now."""
    login_id = user.login_id or ""
    row_id = login_id.partition(":")[0]
    return int(row_id) if row_id.isdigit() else None


def is_idle(row: SignInSession, settings: Settings, now: datetime | None = None) -> bool:
    """True when the session has gone unused past the idle time (never when remembered)."""
    return not row.remembered and (now or utcnow()) - row.last_seen_at >= timedelta(
        minutes=settings.sign_in_idle_minutes)
