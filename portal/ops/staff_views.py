"""The staff accounts page (administrators only): who works in Herald, with which role.

An administrator invites a colleague by email with a role, changes a role,
deactivates or reactivates an account, and sees and removes the identity-provider
accounts linked to staff sign-ins; each action is an event naming who did it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from portal.auth.oidc_accounts import unlink_identity
from portal.db import db_session
from portal.models import Role, StaffIdentity, User
from portal.ops import bp
from portal.ops.access import actor, staff_required
from portal.ops.staff import (
    STAFF_ROLES,
    StaffError,
    change_role,
    deactivate,
    invite_staff,
    reactivate,
    staff_members,
)

ROLE_NAMES = {Role.ADMIN: _l("Administrator"), Role.BILLING_OPERATOR: _l("Billing operator"),
              Role.FINANCE_APPROVER: _l("Finance approver"),
              Role.SUPPORT_AGENT: _l("Support agent"), Role.AUDITOR: _l("Auditor (read only)")}


def admin_required(view: Callable) -> Callable:
    """Allow signed-in administrators only; other staff and customers get 403."""

    @wraps(view)
    @staff_required
    def wrapped(*args, **kwargs):
        if current_user.role is not Role.ADMIN:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


@bp.app_template_filter("staff_role")
def staff_role(code: object) -> str:
    """``billing_operator`` → "Billing operator"."""
    value = getattr(code, "value", code)
    label = next((name for role, name in ROLE_NAMES.items() if role.value == value), None)
    return str(label) if label is not None else str(value)


def _role_choices() -> list[tuple[str, str]]:
    return [(role.value, str(ROLE_NAMES[role])) for role in STAFF_ROLES]


class InviteForm(FlaskForm):
    """Invite a colleague: an emailed link to choose a password."""

    email = EmailField(_l("Email address"), validators=[DataRequired(), Length(max=254)])
    name = StringField(_l("Name"), validators=[Length(max=200)])
    role = SelectField(_l("Role"), validators=[DataRequired()], choices=[])


class RoleForm(FlaskForm):
    """Give a staff member another role."""

    role = SelectField(_l("Role"), validators=[DataRequired()], choices=[])


class ConfirmForm(FlaskForm):
    """A button that only carries the CSRF token."""


def _error_text(error: StaffError) -> str:
    texts = {
        "unknown_role": _("Choose one of the staff roles."),
        "bad_email": _("%(email)s is not an email address; give one like name@example.com.",
                       **error.params),
        "exists": _("%(email)s already has a sign-in. Change that account's role here, or "
                    "ask them to use “Forgot your password?”.", **error.params),
        "self": _("You cannot demote or deactivate yourself; ask another administrator."),
        "last_admin": _("This is the last active administrator; make someone else an "
                        "administrator first."),
        "not_staff": _("That account belongs to a customer, not to staff."),
    }
    return texts.get(error.code, error.code)


def _staff_user(user_id: int) -> User:
    user = db_session().get(User, user_id)
    if user is None or not user.is_staff:
        abort(404)
    return user


@bp.route("/staff")
@admin_required
def staff() -> str:
    """Every staff account: role, second factor, identity provider, last sign-in."""
    return _page()


def _page(invite_form: InviteForm | None = None, status: int = 200):
    db = db_session()
    members = staff_members(db)
    identities = list(db.scalars(sa.select(StaffIdentity).join(User).order_by(
        User.name, StaffIdentity.created_at, StaffIdentity.id)))
    linked = {identity.user_id for identity in identities}
    if invite_form is None:
        invite_form = InviteForm(prefix="invite")
        invite_form.role.choices = _role_choices()
        invite_form.role.data = Role.SUPPORT_AGENT.value
    role_forms = {}
    for member in members:
        form = RoleForm(prefix=f"role-{member.id}")
        form.role.choices = _role_choices()
        form.role.data = member.role.value
        role_forms[member.id] = form
    return render_template("ops/staff/index.html", members=members, linked=linked,
                           identities=identities,
                           invite_form=invite_form, role_forms=role_forms,
                           confirm_form=ConfirmForm()), status


@bp.route("/staff/invite", methods=["POST"])
@admin_required
def staff_invite() -> Response | tuple[str, int]:
    """Invite a colleague by email with a role."""
    form = InviteForm(prefix="invite")
    form.role.choices = _role_choices()
    if not form.validate_on_submit():
        return _page(form, 400)
    try:
        user = invite_staff(db_session(), form.email.data, form.name.data or "",
                            form.role.data, actor=actor())
    except StaffError as exc:
        flash(_error_text(exc), "error")
        return _page(form, 400)
    flash(_("Invitation sent to %(email)s as %(role)s. The link works for a few days.",
            email=user.email, role=staff_role(user.role)), "info")
    return redirect(url_for("ops.staff"))


@bp.route("/staff/<int:user_id>/role", methods=["POST"])
@admin_required
def staff_change_role(user_id: int) -> Response:
    """Give a staff member another role."""
    user = _staff_user(user_id)
    form = RoleForm(prefix=f"role-{user.id}")
    form.role.choices = _role_choices()
    if not form.validate_on_submit():
        flash(_("Choose one of the staff roles."), "error")
        return redirect(url_for("ops.staff"))
    try:
        if change_role(db_session(), user, form.role.data, by=current_user, actor=actor()):
            flash(_("%(name)s is now %(role)s.", name=user.name, role=staff_role(user.role)),
                  "info")
    except StaffError as exc:
        flash(_error_text(exc), "error")
    return redirect(url_for("ops.staff"))


@bp.route("/staff/<int:user_id>/deactivate", methods=["POST"])
@admin_required
def staff_deactivate(user_id: int) -> Response:
    """Stop a staff member signing in; every session of theirs ends now."""
    user = _staff_user(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        ended = deactivate(db_session(), user, by=current_user, actor=actor())
        flash(_("%(name)s can no longer sign in; %(count)s sessions ended.", name=user.name,
                count=ended), "info")
    except StaffError as exc:
        flash(_error_text(exc), "error")
    return redirect(url_for("ops.staff"))


@bp.route("/staff/<int:user_id>/reactivate", methods=["POST"])
@admin_required
def staff_reactivate(user_id: int) -> Response:
    """Let a deactivated staff member sign in again."""
    user = _staff_user(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        reactivate(db_session(), user, actor=actor())
        flash(_("%(name)s can sign in again.", name=user.name), "info")
    except StaffError as exc:
        flash(_error_text(exc), "error")
    return redirect(url_for("ops.staff"))


@bp.route("/staff/<int:user_id>/identities/<int:identity_id>/remove", methods=["POST"])
@admin_required
def staff_remove_identity(user_id: int, identity_id: int) -> Response:
    """Remove an identity-provider account's link to a staff sign-in (it no longer signs in)."""
    user = _staff_user(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    db = db_session()
    identity = db.get(StaffIdentity, identity_id)
    if identity is None or identity.user_id != user.id:
        abort(404)
    unlink_identity(db, identity, by_admin=True, actor=actor())
    flash(_("%(name)s can no longer sign in with the identity-provider account %(account)s.",
            name=user.name, account=identity.email or identity.subject), "info")
    return redirect(url_for("ops.staff"))
