"""API keys and customers' app tokens: made random, shown once, kept as SHA-256 digests.

A credential reads ``<kind>_<prefix>_<secret>``: the prefix (not secret) finds the
row, the digest of the whole string proves it. The secret has 256 bits, so a plain
SHA-256 is enough (nothing to brute-force, unlike a password).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.events import record_event
from portal.api.spec import SCOPES
from portal.models import ApiKey, CustomerApiToken, User
from portal.models.base import utcnow

KEY_KIND = "hk"
CUSTOMER_KIND = "hct"
MAX_RATE_LIMIT = 1_000_000


class KeyError_(ValueError):
    """A key cannot be created or changed as asked; the message says why."""


def _digest(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


def _new_credential(kind: str) -> tuple[str, str]:
    prefix = secrets.token_hex(6)
    return prefix, f"{kind}_{prefix}_{secrets.token_urlsafe(32)}"


def _parse(credential: str, kind: str) -> str | None:
    parts = credential.split("_", 2)  # the secret itself may hold "_"
    if len(parts) != 3 or parts[0] != kind or len(parts[1]) != 12:
        return None
    return parts[1]


def create_key(session: Session, name: str, scopes: list[str], *, actor: str,
               rate_limit: int | None = None) -> tuple[ApiKey, str]:
    """A new key and its secret (which is not kept: show it once).

    ``rate_limit`` is the key's requests per rate window; None keeps the installation's.
    """
    name = name.strip()
    if not name or len(name) > 80:
        raise KeyError_("give the key a name of 1 to 80 characters (who uses it)")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise KeyError_(f"scopes must be some of {', '.join(SCOPES)}"
                        + (f"; {', '.join(unknown)} is not one" if unknown else ""))
    if rate_limit is not None and not 1 <= rate_limit <= MAX_RATE_LIMIT:
        raise KeyError_(f"the rate limit must be a whole number from 1 to {MAX_RATE_LIMIT} "
                        "requests per window, or left empty for the installation's")
    if session.scalar(sa.select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise KeyError_(f"a key named {name!r} exists; choose another name or revoke it")
    prefix, secret = _new_credential(KEY_KIND)
    key = ApiKey(name=name, prefix=prefix, key_sha256=_digest(secret),
                 scopes=" ".join(sorted(set(scopes))), rate_limit=rate_limit,
                 created_by=actor)
    session.add(key)
    session.flush()
    record_event(session, "api_key", str(key.id), "api_key.created",
                 {"name": name, "prefix": prefix, "scopes": sorted(set(scopes)),
                  "rate_limit": rate_limit}, actor=actor)
    return key, secret


def revoke_key(session: Session, key: ApiKey, *, actor: str) -> None:
    """Stop ``key`` working from now on."""
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        record_event(session, "api_key", str(key.id), "api_key.revoked",
                     {"name": key.name, "prefix": key.prefix}, actor=actor)


def find_key(session: Session, credential: str) -> ApiKey | None:
    """The unrevoked key ``credential`` is, or None."""
    prefix = _parse(credential, KEY_KIND)
    if prefix is None:
        return None
    key = session.scalars(sa.select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if key is None or key.revoked_at is not None:
        return None
    return key if hmac.compare_digest(key.key_sha256, _digest(credential)) else None


def issue_customer_token(session: Session, user: User, *, days: int) -> tuple[CustomerApiToken,
                                                                            str]:
    """A new app token for a customer's own sign-in; the secret is returned once."""
    prefix, secret = _new_credential(CUSTOMER_KIND)
    token = CustomerApiToken(user_id=user.id, prefix=prefix, token_sha256=_digest(secret),
                             expires_at=utcnow() + timedelta(days=days))
    session.add(token)
    session.flush()
    record_event(session, "user", str(user.id), "api_session.created",
                 {"token_id": token.id, "expires_at": token.expires_at.isoformat()},
                 actor=f"customer:{user.id}")
    return token, secret


def find_customer_token(session: Session, credential: str, now: datetime | None = None
                        ) -> CustomerApiToken | None:
    """The valid (unexpired, unrevoked) token ``credential`` is, or None."""
    prefix = _parse(credential, CUSTOMER_KIND)
    if prefix is None:
        return None
    token = session.scalars(sa.select(CustomerApiToken).where(
        CustomerApiToken.prefix == prefix)).first()
    if token is None or token.revoked_at is not None or token.expires_at <= (now or utcnow()):
        return None
    return token if hmac.compare_digest(token.token_sha256, _digest(credential)) else None
