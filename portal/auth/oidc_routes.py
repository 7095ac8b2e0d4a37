"""Staff sign-in through the company's identity provider (OpenID Connect).

``/sign-in/oidc`` sends the browser to the provider with state, nonce and a PKCE
challenge kept in its session; ``/sign-in/oidc/callback`` checks them, verifies
the ID token and signs the matching staff account in. An administrator still
gives a TOTP code (or sets one up) unless the provider's ``amr`` claim names a
method configured in OIDC_MFA_AMR.

A signed-in staff member links their account from the Security page: the same
flow (and the same registered callback), the pending values marked as a link
for that account, so the callback links the returned identity instead of
signing anyone in. They unlink there too, while another way to sign in remains.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from flask import abort, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from distribution.events import record_event
from portal.auth import bp, limits
from portal.auth import oidc as oidc_client
from portal.auth.forms import ConfirmForm
from portal.auth.oidc_accounts import (
    METHOD,
    METHOD_WITH_MFA,
    AccountRefused,
    LinkRefused,
    link_identity,
    resolve_staff,
    unlink_identity,
)
from portal.auth.routes import (
    _safe_next,
    _second_factor_or_finish,
    client_ip,
    finish_sign_in,
    home_for,
    settings,
)
from portal.auth.security_routes import check_current_password
from portal.auth.sessions import user_subject
from portal.db import db_session
from portal.models import StaffIdentity
from portal.oidc_settings import OidcSettings
from portal.security_headers import allow_source

log = logging.getLogger(__name__)

PENDING_KEY = "oidc_pending"
PENDING_SECONDS = 600  # time allowed at the provider's sign-in page
LINK = "link"  # the pending flow's purpose when a signed-in staff member links their account


@bp.record_once
def _allow_the_provider_after_a_form(state) -> None:
    # Linking starts with a form POST (CSRF-protected) answered by a redirect to the
    # provider; browsers apply form-action to that redirect. The authorization endpoint is
    # on the issuer's origin at every common provider.
    oidc = state.app.config["HERALD"].oidc
    if oidc is not None:
        allow_source(state.app, "form-action", provider_origin(oidc))


def provider_origin(oidc: OidcSettings) -> str:
    """The scheme, host and port of the provider's issuer URL."""
    parts = urlsplit(oidc.issuer)
    return f"{parts.scheme}://{parts.netloc}"


@bp.app_context_processor
def _sign_in_with_provider() -> dict:
    oidc = current_app.config["HERALD"].oidc
    return {"oidc_provider": oidc.provider_name if oidc else None}


def _configured() -> OidcSettings:
    oidc = settings().oidc
    if oidc is None:
        abort(404)
    return oidc


def _callback_url() -> str:
    # The address registered at the provider: the public URL, not whatever Host was sent.
    return settings().public_url + url_for("auth.oidc_callback")


def _refused(oidc: OidcSettings, reason: str, message: str) -> Response:
    record_event(db_session(), "sign_in", "identity-provider", "auth.sign_in_failed",
                 {"step": "oidc", "reason": reason[:200], "ip": client_ip()},
                 actor="anonymous")
    log.warning("identity provider sign-in refused: %s", reason)
    flash(message, "error")
    return redirect(url_for("auth.sign_in"))


@bp.route("/sign-in/oidc")
def oidc_start() -> Response:
    """Send the browser to the identity provider's sign-in page."""
    oidc = _configured()
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    try:
        url, pending = oidc_client.begin(oidc, _callback_url())
    except oidc_client.OidcError as exc:
        log.warning("identity provider unavailable: %s", exc.reason)
        flash(_("%(provider)s cannot be reached right now. Try again in a moment, or sign in "
                "with your password.", provider=oidc.provider_name), "error")
        return redirect(url_for("auth.sign_in"))
    session[PENDING_KEY] = {**pending, "next": _safe_next(request.args.get("next")),
                            "at": int(time.time())}
    return redirect(url)


@bp.route("/sign-in/oidc/callback")
def oidc_callback() -> Response:
    """The provider sends the browser back here with a code; sign the staff member in."""
    oidc = _configured()
    pending = session.pop(PENDING_KEY, None)
    linking = isinstance(pending, dict) and pending.get("purpose") == LINK
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        if linking:
            flash(_("That link was started too long ago. Start it again."), "error")
            return redirect(url_for("auth.security"))
        flash(_("That sign-in was started too long ago or in another browser. Start it again."),
              "error")
        return redirect(url_for("auth.sign_in"))
    if linking:
        return _finish_link(oidc, pending)
    try:
        claims = oidc_client.finish(oidc, _callback_url(), pending, request.args.to_dict())
    except oidc_client.OidcError as exc:
        return _refused(oidc, exc.reason, _(
            "Signing in with %(provider)s did not work. Try again, or sign in with your "
            "password.", provider=oidc.provider_name))
    db = db_session()
    try:
        user = resolve_staff(db, oidc, claims)
    except AccountRefused as exc:
        return _refused(oidc, exc.reason, _(
            "%(provider)s knows you, but Herald has no active staff account for you. Ask an "
            "administrator to invite you.", provider=oidc.provider_name))
    if oidc.asserts_mfa(claims):
        record_event(db, *user_subject(user), "auth.provider_mfa_accepted",
                     {"amr": [m for m in claims.get("amr", []) if isinstance(m, str)][:10]},
                     actor=f"user:{user.id}")
        return finish_sign_in(user, METHOD_WITH_MFA, next_url=pending.get("next"))
    return _second_factor_or_finish(user, METHOD, next_url=pending.get("next"))


# Linking a signed-in staff member's account


def _staff_actor() -> str:
    # The ops console's actor string (id, role, email), so the audit log reads the same.
    return f"staff:{current_user.id}:{current_user.role.value}:{current_user.email}"


def _signed_in_staff() -> None:
    if not current_user.is_staff:
        abort(403)


def _link_refused_text(code: str, provider: str) -> str:
    return {
        "linked_elsewhere": _("That %(provider)s account is already linked to another Herald "
                              "account. Nothing was changed.", provider=provider),
        "other_identity_here": _("Your account is already linked to another %(provider)s "
                                 "account. Unlink that one first.", provider=provider),
        "last_sign_in": _("This is your only way to sign in. Set a password first (“Forgot "
                          "your password?” on the sign-in page sends you a link), then unlink "
                          "it."),
    }.get(code, code)


@bp.route("/security/identity-provider/link", methods=["POST"])
@login_required
def identity_link() -> Response:
    """Start linking the signed-in staff member's account to the company's identity provider."""
    _signed_in_staff()
    oidc = _configured()
    if not ConfirmForm().validate_on_submit():
        abort(400)
    refusal = _password_refusal(oidc)
    if refusal is not None:
        return refusal
    try:
        url, pending = oidc_client.begin(oidc, _callback_url())
    except oidc_client.OidcError as exc:
        log.warning("identity provider unavailable: %s", exc.reason)
        flash(_("%(provider)s cannot be reached right now. Try again in a moment.",
                provider=oidc.provider_name), "error")
        return redirect(url_for("auth.security"))
    if urlsplit(url).netloc != urlsplit(oidc.issuer).netloc:
        # The content security policy allows the issuer's origin only (see above).
        log.warning("the provider's authorization endpoint is not on the issuer's origin: "
                    "browsers will refuse to follow the link's redirect")
    # The callback links to this account only, and only while it is still signed in here.
    session[PENDING_KEY] = {**pending, "purpose": LINK, "user_id": current_user.id,
                            "at": int(time.time())}
    return redirect(url)


def _password_refusal(oidc: OidcSettings) -> Response | None:
    """Ask for the current password before linking (None when given, or none is set).

    A link is a new way into the account: whoever holds a stolen session cookie must not
    be able to add their own provider account to it. Attempts count like password
    changes, so the form cannot be used to guess the password.
    """
    if not current_user.password_hash:
        return None  # signed in through the provider itself: nothing else to ask
    checked = check_current_password("identity_link", request.form.get("password", "")[:200])
    if isinstance(checked, limits.Limited):
        flash(_("Too many attempts. For your safety, try again in %(minutes)s minutes.",
                minutes=checked.minutes), "error")
        return redirect(url_for("auth.security"))
    if checked:
        return None
    record_event(db_session(), *user_subject(current_user), "auth.identity_link_failed",
                 {"issuer": oidc.issuer, "reason": "current password not given",
                  "ip": client_ip()}, actor=_staff_actor())
    flash(_("That is not your current password."), "error")
    return redirect(url_for("auth.security"))


def _finish_link(oidc: OidcSettings, pending: dict) -> Response:
    if not current_user.is_authenticated or not current_user.is_staff \
            or current_user.id != pending.get("user_id"):
        flash(_("Linking was started by another sign-in. Sign in and start it again."), "error")
        return redirect(url_for("auth.sign_in"))
    db = db_session()

    def refused(reason: str, message: str) -> Response:
        record_event(db, *user_subject(current_user), "auth.identity_link_failed",
                     {"issuer": oidc.issuer, "reason": reason[:200], "ip": client_ip()},
                     actor=_staff_actor())
        log.warning("identity provider link refused: %s", reason)
        flash(message, "error")
        return redirect(url_for("auth.security"))

    try:
        claims = oidc_client.finish(oidc, _callback_url(), pending, request.args.to_dict())
    except oidc_client.OidcError as exc:
        return refused(exc.reason, _("Linking with %(provider)s did not work. Nothing was "
                                     "changed; try again.", provider=oidc.provider_name))
    try:
        identity = link_identity(db, oidc, current_user, claims, actor=_staff_actor())
    except LinkRefused as exc:
        return refused(exc.code, _link_refused_text(exc.code, oidc.provider_name))
    if identity is None:
        flash(_("Your account was already linked to this %(provider)s account.",
                provider=oidc.provider_name), "info")
    else:
        flash(_("Linked: you can now sign in with %(provider)s.", provider=oidc.provider_name),
              "info")
    return redirect(url_for("auth.security"))


@bp.route("/security/identity-provider/<int:identity_id>/unlink", methods=["POST"])
@login_required
def identity_unlink(identity_id: int) -> Response:
    """Unlink one of the signed-in staff member's own provider identities."""
    _signed_in_staff()
    if not ConfirmForm().validate_on_submit():
        abort(400)
    db = db_session()
    identity = db.get(StaffIdentity, identity_id)
    if identity is None or identity.user_id != current_user.id:
        abort(404)
    try:
        unlink_identity(db, identity, by_admin=False, actor=_staff_actor())
    except LinkRefused as exc:
        oidc = settings().oidc
        flash(_link_refused_text(exc.code, oidc.provider_name if oidc else ""), "error")
        return redirect(url_for("auth.security"))
    flash(_("Unlinked: that identity-provider account no longer signs you in."), "info")
    return redirect(url_for("auth.security"))
