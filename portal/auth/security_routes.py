"""The "Security" page: signed-in devices, the second factor, and the password."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user
from werkzeug.wrappers import Response

from distribution.events import record_event
from portal.auth import bp, limits
from portal.auth import totp as totp_service
from portal.auth.forms import (
    ChangePasswordForm,
    ConfirmForm,
    EndSessionForm,
    TotpConfirmForm,
    TotpDisableForm,
)
from portal.auth.oidc_accounts import identities_of, may_unlink, session_has_provider_mfa
from portal.auth.passwords import verify_password
from portal.auth.routes import _set_password, client_ip, settings
from portal.auth.sessions import (
    active_sessions,
    current_session_id,
    end_other_sessions,
    end_session,
    user_subject,
)
from portal.db import db_session
from portal.models import SignInSession

SETUP_KEY = "totp_setup_secret"
# Pages an administrator without TOTP may still reach: setting it up, and leaving.
TOTP_SETUP_ENDPOINTS = frozenset({"auth.totp_setup", "auth.sign_out", "static",
                                  "i18n.switch_language"})


@bp.before_app_request
def enforce_totp_for_admins() -> Response | None:
    """Send a user who must use TOTP (administrators) to set it up before anything else."""
    if request.endpoint in TOTP_SETUP_ENDPOINTS or request.endpoint is None:
        return None
    if current_user.is_authenticated and totp_service.totp_required(current_user) \
            and not current_user.totp_enabled \
            and not session_has_provider_mfa(db_session(), current_user):
        flash(_("Administrators must use a second factor. Set up your authenticator app to "
                "continue."), "info")
        return redirect(url_for("auth.totp_setup"))
    return None


def _actor() -> str:
    return f"user:{current_user.id}"


def _page(**forms) -> str:
    db = db_session()
    forms.setdefault("password_form", ChangePasswordForm(prefix="password"))
    forms.setdefault("disable_form", TotpDisableForm(prefix="disable"))
    identities = identities_of(db, current_user) if current_user.is_staff else []
    return render_template(
        "auth/security.html", sessions=active_sessions(db, current_user, settings()),
        current_id=current_session_id(current_user), end_form=EndSessionForm(),
        recovery_left=totp_service.remaining_recovery_codes(db, current_user)
        if current_user.totp_enabled else 0,
        totp_required=totp_service.totp_required(current_user), identities=identities,
        unlinkable={i.id for i in identities if may_unlink(db, i)},
        provider_issuer=settings().oidc.issuer if settings().oidc else None, **forms)


@bp.route("/security", methods=["GET"])
@login_required
def security() -> str:
    """Devices signed in, the second factor, and changing the password."""
    return _page()


@bp.route("/security/sessions/end", methods=["POST"])
@login_required
def end_device() -> Response:
    """Sign out one of the user's devices (another user's session is not found)."""
    form = EndSessionForm()
    if not form.validate_on_submit() or not str(form.session_id.data).isdigit():
        abort(400)
    db = db_session()
    row = db.get(SignInSession, int(form.session_id.data))
    if row is None or row.user_id != current_user.id or row.ended_at is not None:
        abort(404)
    end_session(db, row, "signed_out_from_devices", actor=_actor())
    if row.id == current_session_id(current_user):
        logout_user()
        flash(_("You are signed out."), "info")
        return redirect(url_for("auth.sign_in"))
    flash(_("That device is signed out."), "info")
    return redirect(url_for("auth.security"))


@bp.route("/security/sessions/end-others", methods=["POST"])
@login_required
def end_other_devices() -> Response:
    """Sign out every device except this one."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    ended = end_other_sessions(db_session(), current_user, current_session_id(current_user),
                               "signed_out_everywhere_else", actor=_actor())
    flash(_("Signed out on %(count)s other devices.", count=ended), "info")
    return redirect(url_for("auth.security"))


@bp.route("/security/password", methods=["POST"])
@login_required
def change_password() -> Response | str | tuple[str, int]:
    """Change the password (the current one first); other devices are signed out."""
    form = ChangePasswordForm(prefix="password")
    if form.validate_on_submit():
        db = db_session()
        checked = check_current_password("password_change", form.current.data)
        if isinstance(checked, limits.Limited):
            flash(_("Too many attempts. For your safety, try again in %(minutes)s minutes.",
                    minutes=checked.minutes), "error")
            return _page(password_form=form), 429
        if checked:
            _set_password(current_user, form.password.data, "password_changed",
                          keep_session=current_session_id(current_user))
            record_event(db, *user_subject(current_user), "auth.password_changed", {},
                         actor=_actor())
            flash(_("Your password is changed. Other devices are signed out."), "info")
            return redirect(url_for("auth.security"))
        form.current.errors.append(_("That is not your current password."))
    return _page(password_form=form)


def check_current_password(action: str, password: str) -> limits.Limited | bool:
    """Whether ``password`` is the signed-in user's, counted against ``action``'s limits.

    ``Limited`` (nothing checked) while too many wrong attempts wait out their window;
    otherwise the attempt is recorded, so the form cannot be used to guess the password.
    """
    db = db_session()
    account = f"user:{current_user.id}"
    limited = limits.check(db, settings(), action, client_ip(), account)
    if limited:
        return limited
    matches = verify_password(current_user.password_hash, password)
    limits.record(db, action, client_ip(), account, succeeded=matches)
    return matches


@bp.route("/security/two-factor", methods=["GET", "POST"])
@login_required
def totp_setup() -> Response | str | tuple[str, int]:
    """Set up an authenticator app: scan the QR code, then confirm with its first code."""
    if current_user.totp_enabled:
        return redirect(url_for("auth.security"))
    form = TotpConfirmForm()
    secret = session.get(SETUP_KEY)
    if not secret:  # kept until confirmed, so reloading the page shows the same QR code
        secret = session[SETUP_KEY] = totp_service.new_secret()
    elif form.validate_on_submit():
        db = db_session()
        account = f"user:{current_user.id}"
        limited = limits.check(db, settings(), "totp", client_ip(), account)
        step = None if limited else totp_service.matching_counter(secret, form.code.data)
        if step is not None:
            limits.record(db, "totp", client_ip(), account, succeeded=True)
            codes = totp_service.enable(db, current_user, secret, step)
            session.pop(SETUP_KEY, None)
            record_event(db, *user_subject(current_user), "auth.totp_enabled", {},
                         actor=_actor())
            return render_template("auth/recovery_codes.html", codes=codes)
        if limited:
            flash(_("Too many attempts. For your safety, try again in %(minutes)s minutes.",
                    minutes=limited.minutes), "error")
        else:
            limits.record(db, "totp", client_ip(), account, succeeded=False)
            form.code.errors.append(_("That code is not right. Check the app shows Herald and "
                                      "type its newest code."))
    uri = totp_service.provisioning_uri(secret, current_user.email)
    return render_template("auth/totp_setup.html", form=form, secret=secret,
                           qr=totp_service.qr_data_uri(uri))


@bp.route("/security/two-factor/disable", methods=["POST"])
@login_required
def totp_disable() -> Response | str | tuple[str, int]:
    """Turn the second factor off, with the password or a current code."""
    form = TotpDisableForm(prefix="disable")
    if not current_user.totp_enabled:
        return redirect(url_for("auth.security"))
    if totp_service.totp_required(current_user):
        flash(_("Administrators must keep a second factor."), "error")
        return redirect(url_for("auth.security"))
    if form.validate_on_submit():
        db = db_session()
        account = f"user:{current_user.id}"
        limited = limits.check(db, settings(), "totp", client_ip(), account)
        if limited:
            flash(_("Too many attempts. For your safety, try again in %(minutes)s minutes.",
                    minutes=limited.minutes), "error")
            return _page(disable_form=form), 429
        ok = (form.password.data and verify_password(current_user.password_hash,
                                                     form.password.data)) or \
            (form.code.data and totp_service.verify_code(current_user, form.code.data))
        if ok:
            limits.record(db, "totp", client_ip(), account, succeeded=True)
            totp_service.disable(db, current_user)
            record_event(db, *user_subject(current_user), "auth.totp_disabled", {},
                         actor=_actor())
            flash(_("Two-step sign-in is off."), "info")
            return redirect(url_for("auth.security"))
        limits.record(db, "totp", client_ip(), account, succeeded=False)
        form.code.errors.append(_("Neither the password nor the code is right."))
    return _page(disable_form=form)
