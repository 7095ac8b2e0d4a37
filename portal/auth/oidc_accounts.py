"""Which staff account an identity-provider sign-in is: linked, matched by email, or new.

An identity is (issuer, subject). The first sign-in links it to the active staff
account with the provider's *verified* email; later sign-ins find it by the link
alone, so a changed email at the provider changes nothing. Without such an
account the sign-in is refused, unless auto-provisioning is on: then a staff
account is created with the role the claims map to (none mapped: refused).
Herald's role of an existing account is managed on the staff page, not by claims.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.events import record_event
from portal.auth.sessions import current_session_id, user_subject
from portal.models import SignInSession, StaffIdentity, User
from portal.models.base import utcnow
from portal.oidc_settings import OidcSettings

# The sign-in session method recorded when the provider vouched for a second factor.
METHOD_WITH_MFA = "oidc_mfa"
METHOD = "oidc"


class AccountRefused(Exception):
    """No staff account may sign in with these claims; ``reason`` is short and loggable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _verified_email(claims: dict) -> str | None:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or len(email) > 254:
        return None
    # An email the provider has not verified could be anyone's: never match or create by it.
    return email.strip().lower() if claims.get("email_verified") is True else None


def _actor(settings: OidcSettings) -> str:
    return f"oidc:{settings.issuer}"[:200]


def resolve_staff(session: Session, settings: OidcSettings, claims: dict) -> User:
    """The active staff account these verified claims sign in as; AccountRefused otherwise."""
    subject = claims["sub"]
    identity = session.scalars(sa.select(StaffIdentity).where(
        StaffIdentity.issuer == settings.issuer, StaffIdentity.subject == subject)).first()
    email = _verified_email(claims)
    if identity is not None:
        user = identity.user
        if not user.is_staff or not user.active:
            raise AccountRefused("account deactivated")
        identity.last_used_at = utcnow()
        identity.email = email or identity.email
        return user
    user = session.scalars(sa.select(User).where(User.email == email)).first() if email else None
    if user is not None:
        if not user.is_staff:
            raise AccountRefused("email belongs to a customer")
        if not user.active:
            raise AccountRefused("account deactivated")
    elif not settings.auto_provision:
        raise AccountRefused("no staff account" if email else "no verified email")
    else:
        user = _provision(session, settings, claims, email)
    session.add(StaffIdentity(user_id=user.id, issuer=settings.issuer, subject=subject,
                              email=email, last_used_at=utcnow()))
    session.flush()
    record_event(session, *user_subject(user), "auth.identity_linked",
                 {"issuer": settings.issuer, "subject": subject}, actor=_actor(settings))
    return user


def _provision(session: Session, settings: OidcSettings, claims: dict,
               email: str | None) -> User:
    role = settings.role_for(claims)
    if role is None:
        raise AccountRefused("no role mapped from the claims")
    if email is None:
        raise AccountRefused("no verified email")
    name = claims.get("name") if isinstance(claims.get("name"), str) else None
    user = User(email=email, name=(name or email.split("@")[0]).strip()[:200], role=role,
                customer_id=None, password_hash=None, session_token=secrets.token_hex(16))
    session.add(user)
    session.flush()
    record_event(session, *user_subject(user), "staff.provisioned",
                 {"role": role.value, "issuer": settings.issuer}, actor=_actor(settings))
    return user


def session_has_provider_mfa(session: Session, user: User) -> bool:
    """True when the user's current sign-in came from the provider with a second factor."""
    row_id = current_session_id(user)
    row = session.get(SignInSession, row_id) if row_id else None
    return row is not None and row.method == METHOD_WITH_MFA
