"""Staff accounts: invite, change role, deactivate and reactivate (administrators only).

Every change is an event on the user (subject ``("user", id)``) naming the
administrator who made it. Two rules keep the installation manageable: an
administrator cannot demote or deactivate themselves, and the last active
administrator cannot be removed.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.events import record_event
from portal.auth import tokens
from portal.auth.emails import account_email_task
from portal.auth.sessions import end_other_sessions, user_subject
from portal.mailer import after_commit
from portal.models import Role, TokenPurpose, User

# The roles a staff account may have (every role but the customers').
STAFF_ROLES = tuple(role for role in Role if role is not Role.CUSTOMER)


class StaffError(ValueError):
    """The change cannot be made; the message says why (already translated by the caller)."""

    def __init__(self, code: str, **params) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def staff_members(session: Session) -> list[User]:
    """Every staff account, active ones first, then by name."""
    return list(session.scalars(sa.select(User).where(User.role != Role.CUSTOMER).order_by(
        User.active.desc(), User.name, User.id)))


def _active_admins(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count(User.id)).where(
        User.role == Role.ADMIN, User.active.is_(True))) or 0


def _staff_role(role: str) -> Role:
    try:
        parsed = Role(role)
    except ValueError:
        parsed = Role.CUSTOMER
    if parsed is Role.CUSTOMER:
        raise StaffError("unknown_role", role=role)
    return parsed


def invite_staff(session: Session, email: str, name: str, role: str, *, actor: str) -> User:
    """Create a staff sign-in without a password and queue the invitation email.

    An invitation that was never accepted (no password yet) is sent again, with the
    role now chosen; any other existing sign-in is refused.
    """
    email = email.strip().lower()
    staff_role = _staff_role(role)
    if "@" not in email or len(email) > 254:
        raise StaffError("bad_email", email=email)
    user = session.scalars(sa.select(User).where(User.email == email)).first()
    if user is None:
        user = User(email=email, name=(name.strip() or email.split("@")[0])[:200],
                    role=staff_role, customer_id=None, password_hash=None,
                    session_token=secrets.token_hex(16))
        session.add(user)
        session.flush()
    elif not user.is_staff or user.password_hash is not None or not user.active:
        raise StaffError("exists", email=email)
    else:
        user.role = staff_role
    row = tokens.request_token(session, user, TokenPurpose.INVITATION, actor=actor)
    record_event(session, *user_subject(user), "staff.invited",
                 {"role": staff_role.value, "token_id": row.id}, actor=actor)
    task, token_id = account_email_task(), row.id
    after_commit(session, lambda: task(token_id))
    return user


def _refuse_losing_an_admin(session: Session, user: User, by: User) -> None:
    """Refuse when ``user`` is ``by`` (no self-demotion) or the last active administrator."""
    if user.role is not Role.ADMIN or not user.active:
        return
    if user.id == by.id:
        raise StaffError("self")
    if _active_admins(session) <= 1:
        raise StaffError("last_admin")


def change_role(session: Session, user: User, role: str, *, by: User, actor: str) -> bool:
    """Give ``user`` another staff role; False when it already has it."""
    new_role = _staff_role(role)
    if not user.is_staff:
        raise StaffError("not_staff")
    if new_role is user.role:
        return False
    if new_role is not Role.ADMIN:
        _refuse_losing_an_admin(session, user, by)
    before = user.role
    user.role = new_role
    session.flush()
    record_event(session, *user_subject(user), "staff.role_changed",
                 {"from": before.value, "to": new_role.value}, actor=actor)
    return True


def deactivate(session: Session, user: User, *, by: User, actor: str) -> int:
    """Stop ``user`` signing in and end every session they have; returns how many ended."""
    if not user.is_staff:
        raise StaffError("not_staff")
    if user.id == by.id:
        raise StaffError("self")
    if not user.active:
        return 0
    _refuse_losing_an_admin(session, user, by)
    user.active = False
    # A new token also voids a sign-in waiting for its second factor.
    user.session_token = secrets.token_hex(16)
    ended = end_other_sessions(session, user, None, "deactivated", actor=actor)
    record_event(session, *user_subject(user), "staff.deactivated",
                 {"sessions_ended": ended}, actor=actor)
    return ended


def reactivate(session: Session, user: User, *, actor: str) -> None:
    """Let a deactivated staff member sign in again (their old sessions stay ended)."""
    if not user.is_staff:
        raise StaffError("not_staff")
    if user.active:
        return
    user.active = True
    session.flush()
    record_event(session, *user_subject(user), "staff.reactivated", {}, actor=actor)
