"""Sign-in and sign-out views."""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from portal.auth import bp
from portal.auth.forms import SignInForm
from portal.auth.passwords import hash_password, needs_rehash, verify_password
from portal.db import db_session
from portal.extensions import login_manager
from portal.models import User
from portal.models.base import utcnow


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """Find the user of a session; a rotated session token signs the session out."""
    user_id, _, token = session_id.partition(":")
    if not user_id.isdigit() or not token:
        return None
    user = db_session().get(User, int(user_id))
    if user is None or not secrets.compare_digest(user.session_token, token):
        return None
    return user


def home_for(user: User) -> str:
    """Where a user lands after signing in."""
    return url_for("invoices.index") if not user.is_staff else url_for("ops.overview")


@bp.route("/", methods=["GET"])
def root() -> Response:
    """Send visitors to their start page or to sign-in."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return redirect(url_for("auth.sign_in"))


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response | str:
    """Show the sign-in form and sign the user in when email and password match."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = SignInForm()
    if form.validate_on_submit():
        session = db_session()
        email = form.email.data.strip().lower()
        user = session.scalars(sa.select(User).where(User.email == email)).first()
        if user is not None and user.active and verify_password(user.password_hash,
                                                                form.password.data):
            if needs_rehash(user.password_hash):
                user.password_hash = hash_password(form.password.data)
            user.last_login_at = utcnow()
            login_user(user, remember=form.remember.data)
            return redirect(_safe_next(request.args.get("next")) or home_for(user))
        # One message for every failure, so the form does not reveal which emails exist.
        flash(_("That email address and password do not match. Check both and try again."), "error")
    return render_template("auth/sign_in.html", form=form)


@bp.route("/sign-out", methods=["POST"])
@login_required
def sign_out() -> Response:
    """End the session (POST with CSRF, so a link elsewhere cannot sign anyone out)."""
    logout_user()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.sign_in"))


def _safe_next(target: str | None) -> str | None:
    """Accept only a path on this site as the place to return to."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None
