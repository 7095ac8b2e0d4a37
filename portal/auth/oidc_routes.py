"""Staff sign-in through the company's identity provider (OpenID Connect).

``/sign-in/oidc`` sends the browser to the provider with state, nonce and a PKCE
challenge kept in its session; ``/sign-in/oidc/callback`` checks them, verifies
the ID token and signs the matching staff account in. An administrator still
gives a TOTP code (or sets one up) unless the provider's ``amr`` claim names a
method configured in OIDC_MFA_AMR.
"""

from __future__ import annotations

import logging
import time

from flask import abort, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from distribution.events import record_event
from portal.auth import bp
from portal.auth import oidc as oidc_client
from portal.auth.oidc_accounts import METHOD, METHOD_WITH_MFA, AccountRefused, resolve_staff
from portal.auth.routes import (
    _safe_next,
    _second_factor_or_finish,
    client_ip,
    finish_sign_in,
    home_for,
    settings,
)
from portal.auth.sessions import user_subject
from portal.db import db_session
from portal.oidc_settings import OidcSettings

log = logging.getLogger(__name__)

PENDING_KEY = "oidc_pending"
PENDING_SECONDS = 600  # time allowed at the provider's sign-in page


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
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        flash(_("That sign-in was started too long ago or in another browser. Start it again."),
              "error")
        return redirect(url_for("auth.sign_in"))
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
