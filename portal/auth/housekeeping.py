"""Clearing out what sign-in security no longer needs: old attempts, sessions and links.

Attempts matter only inside the rate-limit window; ended or expired sessions and
used or expired links are kept a while for the Devices page and for support,
then deleted. The event log keeps the history.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from huey import crontab
from sqlalchemy.orm import Session

from portal.config import Settings
from portal.db import get_database
from portal.models import AccountToken, SignInAttempt, SignInSession
from portal.models.base import utcnow
from portal.queue import get_huey

log = logging.getLogger(__name__)

EXTENSION_KEY = "herald.auth.housekeeping"
KEEP_ATTEMPTS = timedelta(days=1)
KEEP_SESSIONS_AND_LINKS = timedelta(days=90)


def purge(session: Session, settings: Settings) -> dict[str, int]:
    """Delete attempts past any window, and sessions and links long over; returns counts."""
    now = utcnow()
    attempts_before = now - max(KEEP_ATTEMPTS,
                                timedelta(minutes=settings.sign_in_limit_window_minutes))
    old = now - KEEP_SESSIONS_AND_LINKS
    attempts = session.execute(sa.delete(SignInAttempt).where(
        SignInAttempt.at < attempts_before)).rowcount
    sessions = session.execute(sa.delete(SignInSession).where(
        sa.or_(SignInSession.ended_at < old, SignInSession.expires_at < old))).rowcount
    links = session.execute(sa.delete(AccountToken).where(
        sa.or_(AccountToken.used_at < old, AccountToken.expires_at < old,
               sa.and_(AccountToken.expires_at.is_(None), AccountToken.created_at < old))
    )).rowcount
    return {"attempts": attempts, "sessions": sessions, "links": links}


def init_app(app: Flask) -> None:
    """Register the hourly purge on the app's queue (once per app)."""
    if EXTENSION_KEY in app.extensions:
        return
    database = get_database(app)
    settings: Settings = app.config["HERALD"]

    @get_huey(app).periodic_task(crontab(minute="23"), name="purge_sign_in_records")
    def purge_sign_in_records() -> dict[str, int]:
        with database.session_scope() as session:
            counts = purge(session, settings)
        log.info("sign-in records purged: %s", counts)
        return counts

    app.extensions[EXTENSION_KEY] = purge_sign_in_records
