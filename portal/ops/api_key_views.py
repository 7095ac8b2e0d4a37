"""API keys from the ops console (administrators only): create, list, revoke.

A new key is shown once, on the page that answers its creation (never stored,
never in a redirect or the log); afterwards only its prefix identifies it. Each
creation and revocation is an event naming the administrator.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, current_app, flash, make_response, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import IntegerField, SelectMultipleField, StringField, widgets
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from portal.api.keys import MAX_RATE_LIMIT, KeyError_, create_key, revoke_key
from portal.api.spec import SCOPES
from portal.config import Settings
from portal.db import db_session
from portal.models import ApiKey
from portal.ops import bp
from portal.ops.access import actor
from portal.ops.staff_views import ConfirmForm, admin_required

SCOPE_LABELS = {
    "read": _l("Read customers, invoices, deliveries, disputes, notes and runs"),
    "invoices:write": _l("Create and issue invoices; resend them"),
    "payments:write": _l("Record payments and refunds"),
    "customers:write": _l("Write notes on customers and invoices"),
    "support": _l("Open and answer disputes, resend invoices"),
    "runs:write": _l("Create runs; pause, resume or cancel their waves"),
    "admin": _l("Register webhook endpoints, read their delivery logs and replay deliveries"),
}


class KeyForm(FlaskForm):
    """A new key: who uses it, what it may do, and how fast."""

    name = StringField(_l("Name (who uses it, e.g. call centre)"),
                       validators=[DataRequired(), Length(max=80)])
    scopes = SelectMultipleField(_l("Scopes"), validators=[DataRequired()], choices=[],
                                 option_widget=widgets.CheckboxInput(),
                                 widget=widgets.ListWidget(prefix_label=False))
    rate_limit = IntegerField(_l("Rate limit (requests per window; empty: the default)"),
                              validators=[Optional(), NumberRange(1, MAX_RATE_LIMIT)])


def _key_form(*, blank: bool = False) -> KeyForm:
    # blank: after a key is made, offer an empty form rather than the one just sent.
    form = KeyForm(prefix="key", formdata=None) if blank else KeyForm(prefix="key")
    form.scopes.choices = [(scope, f"{scope}: {SCOPE_LABELS.get(scope, SCOPES[scope])}")
                           for scope in SCOPES]
    return form


def _page(form: KeyForm, *, new_key: ApiKey | None = None, secret: str | None = None,
          status: int = 200) -> Response:
    settings = _settings()
    keys = db_session().scalars(sa.select(ApiKey).order_by(
        ApiKey.revoked_at.is_not(None), ApiKey.name)).all()
    response = make_response(render_template(
        "ops/api_keys/index.html", keys=keys, form=form, confirm_form=ConfirmForm(),
        new_key=new_key, secret=secret, default_limit=settings.api_rate_limit,
        window=settings.api_rate_window_seconds), status)
    # The page may show a key once: no cache anywhere may keep it.
    response.headers["Cache-Control"] = "no-store"
    return response


def _settings() -> Settings:
    return current_app.config["HERALD"]


@bp.route("/api-keys")
@admin_required
def api_keys() -> Response:
    """The integration keys: name, prefix, scopes, rate limit, last used, revoked."""
    return _page(_key_form())


@bp.route("/api-keys", methods=["POST"])
@admin_required
def api_key_create() -> Response:
    """Create a key and show it once."""
    form = _key_form()
    if not form.validate_on_submit():
        return _page(form, status=400)
    try:
        key, secret = create_key(db_session(), form.name.data, list(form.scopes.data),
                                 actor=actor(), rate_limit=form.rate_limit.data)
    except KeyError_:
        form.name.errors = [_("A key with that name exists; choose another name or revoke "
                              "that key first.")]
        return _page(form, status=400)
    return _page(_key_form(blank=True), new_key=key, secret=secret, status=201)


@bp.route("/api-keys/<int:key_id>/revoke", methods=["POST"])
@admin_required
def api_key_revoke(key_id: int) -> Response:
    """Revoke a key: it stops working at once."""
    key = db_session().get(ApiKey, key_id)
    if key is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    revoke_key(db_session(), key, actor=actor())
    flash(_("The key %(name)s (%(prefix)s) is revoked; calls with it are refused from now on.",
            name=key.name, prefix=key.prefix), "info")
    return redirect(url_for("ops.api_keys"))
