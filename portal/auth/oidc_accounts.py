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
from portal.auth.sessions import current_session_id, end_session, user_subject
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


class LinkRefused(Exception):
    """The identity cannot be linked to (or unlinked from) this account; ``code`` says why."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def link_identity(session: Session, settings: OidcSettings, user: User, claims: dict, *,
                  actor: str) -> StaffIdentity | None:
    """Link the provider identity in these verified claims to the signed-in staff ``user``.

    Returns the new link, or ``None`` when it was already this account's. Refused
    (:class:`LinkRefused`) when the identity belongs to another account, or when this
    account already has another identity at the same provider: one person, one
    identity per provider, so that a sign-in always names exactly one account.
    """
    subject = claims["sub"]
    existing = session.scalars(sa.select(StaffIdentity).where(
        StaffIdentity.issuer == settings.issuer, StaffIdentity.subject == subject)).first()
    if existing is not None:
        if existing.user_id != user.id:
            raise LinkRefused("linked_elsewhere")
        existing.last_used_at = utcnow()
        return None
    if session.scalars(sa.select(StaffIdentity.id).where(
            StaffIdentity.user_id == user.id,
            StaffIdentity.issuer == settings.issuer)).first() is not None:
        raise LinkRefused("other_identity_here")
    identity = StaffIdentity(user_id=user.id, issuer=settings.issuer, subject=subject,
                             email=_verified_email(claims), last_used_at=utcnow())
    session.add(identity)
    session.flush()
    record_event(session, *user_subject(user), "auth.identity_linked",
                 {"issuer": settings.issuer, "subject": subject, "how": "linked_by_user",
                  "identity_id": identity.id}, actor=actor)
    return identity


def identities_of(session: Session, user: User | int) -> list[StaffIdentity]:
    """The provider identities linked to a staff account, oldest first."""
    user_id = user if isinstance(user, int) else user.id
    return list(session.scalars(sa.select(StaffIdentity).where(
        StaffIdentity.user_id == user_id).order_by(StaffIdentity.created_at, StaffIdentity.id)))


def may_unlink(session: Session, identity: StaffIdentity) -> bool:
    """True when the account can still sign in without this identity (a password, or
    another linked identity)."""
    if identity.user.password_hash:
        return True
    return session.scalar(sa.select(sa.func.count(StaffIdentity.id)).where(
        StaffIdentity.user_id == identity.user_id, StaffIdentity.id != identity.id)) > 0


def unlink_identity(session: Session, identity: StaffIdentity, *, by_admin: bool,
                    actor: str) -> None:
    """Remove a link; the staff member themself only while another way to sign in remains.

    An administrator may remove any link (a colleague's provider account was taken
    over, or reassigned); the sessions opened through the provider end with it, since a
    session does not record which of the account's identities opened it.
    """
    if not by_admin and not may_unlink(session, identity):
        raise LinkRefused("last_sign_in")
    if by_admin:
        for row in session.scalars(sa.select(SignInSession).where(
                SignInSession.user_id == identity.user_id, SignInSession.ended_at.is_(None),
                SignInSession.method.in_((METHOD, METHOD_WITH_MFA)))):
            end_session(session, row, "identity_unlinked", actor=actor)
    record_event(session, *user_subject(identity.user_id), "auth.identity_unlinked",
                 {"issuer": identity.issuer, "subject": identity.subject,
                  "identity_id": identity.id, "by": "administrator" if by_admin else "user"},
                 actor=actor)
    session.delete(identity)
    session.flush()
