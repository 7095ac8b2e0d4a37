"""Single-use emailed links: magic sign-in, password reset, invitation and registration.

The request that asks for a link creates an :class:`AccountToken` row with no
token yet; the mail task calls :func:`issue` to make the random token, store its
SHA-256 and expiry, and email it. Issuing again for the same purpose and user
ends the earlier links. Redeeming marks the row used, so a link works once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.config import Settings
from portal.models import AccountToken, TokenPurpose, User
from portal.models.base import utcnow

MAX_TOKEN_LENGTH = 128


def token_digest(token: str) -> str:
    """The SHA-256 (hex) a token is stored and looked up by."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def lifetime(settings: Settings, purpose: TokenPurpose) -> timedelta:
    """How long a link of ``purpose`` works once sent."""
    if purpose in (TokenPurpose.INVITATION, TokenPurpose.REGISTRATION):
        return timedelta(days=settings.sign_in_invitation_days)
    return timedelta(minutes=settings.sign_in_link_minutes)


def request_token(session: Session, user: User, purpose: TokenPurpose, *,
                  actor: str) -> AccountToken:
    """A row for a link to be made and sent by the mail task (the caller queues it)."""
    row = AccountToken(purpose=purpose, user_id=user.id, created_by=actor)
    session.add(row)
    session.flush()
    return row


def issue(session: Session, row: AccountToken, settings: Settings) -> str | None:
    """Make the row's token (ending earlier unused links of the same kind); None if used."""
    if row.used_at is not None:
        return None
    # A retried task (the send failed) makes a new token, which ends the unsent one.
    now = utcnow()
    end_links(session, row.user_id, row.purpose, before=row.id)
    token = secrets.token_urlsafe(32)
    row.token_sha256 = token_digest(token)
    row.expires_at = now + lifetime(settings, row.purpose)
    row.sent_at = now
    session.flush()
    return token


def end_links(session: Session, user_id: int, purpose: TokenPurpose,
              before: int | None = None) -> None:
    """End the user's unused links of ``purpose`` (only those older than row ``before``)."""
    query = sa.select(AccountToken).where(
        AccountToken.user_id == user_id, AccountToken.purpose == purpose,
        AccountToken.used_at.is_(None))
    if before is not None:
        query = query.where(AccountToken.id < before)
    now = utcnow()
    for older in session.scalars(query):
        older.used_at = now


def find(session: Session, token: str, purpose: TokenPurpose) -> AccountToken | None:
    """The unused, unexpired row ``token`` belongs to, for ``purpose``; None otherwise."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = session.scalars(sa.select(AccountToken).where(
        AccountToken.token_sha256 == token_digest(token))).first()
    if row is None or row.purpose is not purpose or row.used_at is not None \
            or row.expires_at is None or row.expires_at <= utcnow():
        return None
    return row


def redeem(session: Session, row: AccountToken) -> None:
    """Use the link up: it will not work again."""
    row.used_at = utcnow()
    session.flush()
