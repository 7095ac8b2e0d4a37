"""Rate limits on sign-in steps, per account and per client address, kept in the database.

Every attempt is a row in ``sign_in_attempts``, so the limits hold across
processes and machines on SQLite and PostgreSQL alike. Per account, failures
count since the account's last success (knowing the password proves enough);
per address, every failure in the window counts and a success resets nothing,
so an attacker cannot clear the address limit by signing in to an account of
their own between guesses. Steps that send email count every request.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.config import Settings
from portal.models import SignInAttempt
from portal.models.base import utcnow

# Actions whose every request counts (they send email or probe ownership), not only failures.
COUNT_EVERY_REQUEST = frozenset({"magic_link", "reset", "register"})


@dataclass(frozen=True, slots=True)
class Limited:
    """The step is refused until ``retry_at``."""

    retry_at: datetime

    @property
    def minutes(self) -> int:
        """Whole minutes to wait, at least 1."""
        return max(1, math.ceil((self.retry_at - utcnow()).total_seconds() / 60))


def account_key(email_or_user: str) -> str:
    """The digest an account is counted under (a typed email is not kept as typed)."""
    return hashlib.sha256(email_or_user.strip().lower().encode("utf-8")).hexdigest()


def check(session: Session, settings: Settings, action: str, ip: str,
          account: str | None = None) -> Limited | None:
    """``Limited`` when ``action`` from ``ip`` (for ``account``) must wait; None when allowed."""
    window = timedelta(minutes=settings.sign_in_limit_window_minutes)
    since = utcnow() - window
    counted = sa.select(SignInAttempt.at).where(SignInAttempt.at > since,
                                                SignInAttempt.action == action)
    if action not in COUNT_EVERY_REQUEST:
        counted = counted.where(SignInAttempt.succeeded.is_(False))
    by_address = counted.where(SignInAttempt.ip_address == ip)
    waits: list[datetime] = []
    oldest = _nth_newest(session, by_address, settings.sign_in_limit_per_address)
    if oldest is not None:
        waits.append(oldest + window)
    if account is not None:
        key = account_key(account)
        by_account = counted.where(SignInAttempt.account_key == key)
        if action not in COUNT_EVERY_REQUEST:
            last_success = session.scalar(sa.select(sa.func.max(SignInAttempt.at)).where(
                SignInAttempt.account_key == key, SignInAttempt.action == action,
                SignInAttempt.succeeded.is_(True), SignInAttempt.at > since))
            if last_success is not None:
                by_account = by_account.where(SignInAttempt.at > last_success)
        oldest = _nth_newest(session, by_account, settings.sign_in_limit_per_account)
        if oldest is not None:
            waits.append(oldest + window)
    return Limited(max(waits)) if waits else None


def _nth_newest(session: Session, query: sa.Select, limit: int) -> datetime | None:
    """The time of the ``limit``-th newest counted attempt, when there are that many."""
    return session.scalar(query.order_by(SignInAttempt.at.desc()).offset(limit - 1).limit(1))


def record(session: Session, action: str, ip: str, account: str | None, *,
           succeeded: bool) -> None:
    """Log one attempt (flushed with the caller's transaction)."""
    session.add(SignInAttempt(action=action, ip_address=ip[:45],
                              account_key=account_key(account) if account else None,
                              succeeded=succeeded))
    session.flush()
