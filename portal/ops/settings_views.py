"""The settings page of the ops console (admins only; other staff and customers get 403).

It edits what is stored in the database: the seller (``organisations``), its
branding, the sending defaults (``delivery_defaults``) and the message types'
default channels. Channel settings come from the environment and are shown
read-only (portal.ops.settings_channels), each with a test button.
"""

from __future__ import annotations

from functools import wraps

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from distribution.channels.base import ChannelError, ChannelName
from distribution.events import record_event
from portal.db import db_session
from portal.models import Organisation, Role
from portal.ops import bp
from portal.ops.access import View, actor, staff_required
from portal.ops.labels import CHANNELS
from portal.ops.settings_channels import (
    TARGET_LABELS,
    TESTABLE,
    TestRefused,
    channel_overview,
    send_test,
)
from portal.ops.settings_forms import (
    BrandingForm,
    ChannelTestForm,
    MessageTypeForm,
    SellerForm,
    SendingForm,
)
from portal.ops.settings_store import (
    DEFAULT_CHANNELS,
    SETTINGS_SUBJECT,
    LogoError,
    check_logo,
    delivery_defaults,
    message_types,
    update_branding,
    update_delivery_defaults,
    update_message_type,
    update_seller,
)


def settings_admin_required(view: View) -> View:
    """Allow administrators only."""

    @wraps(view)
    @staff_required
    def wrapped(*args, **kwargs):
        if current_user.role is not Role.ADMIN:
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _organisations(session: Session) -> list[Organisation]:
    return list(session.scalars(sa.select(Organisation).order_by(Organisation.id)))


def _organisation(session: Session, org_id: int) -> Organisation:
    org = session.get(Organisation, org_id)
    if org is None:
        abort(404)
    return org


def _seller_data(org: Organisation | None) -> dict[str, object]:
    if org is None:
        return {"default_currency": "EUR"}
    data = {name: getattr(org, name) for name in SellerForm.__dict__
            if hasattr(org, name) and name != "peppol_endpoint"}
    data["peppol_endpoint"] = (f"{org.peppol_endpoint_scheme}:{org.peppol_endpoint_id}"
                               if org.peppol_endpoint_id else "")
    return data


def _type_form(kind, formdata=None) -> MessageTypeForm:
    form = MessageTypeForm(formdata=formdata, prefix=f"type-{kind.code}",
                           data={"default_channels": list(kind.default_channels),
                                 "mandatory": kind.mandatory})
    form.default_channels.choices = [(c.value, CHANNELS[c.value]) for c in DEFAULT_CHANNELS]
    return form


def _page(session: Session, org: Organisation | None, *, status: int = 200, **forms):
    """The whole page; ``forms`` replaces the form of the section that was just posted."""
    defaults = delivery_defaults(session)
    sending = forms.get("sending") or SendingForm(formdata=None, data={
        "window_start_hour": defaults.window_start_hour,
        "window_end_hour": defaults.window_end_hour, "weekends": defaults.weekends,
        "window_time_zone": defaults.window_time_zone or "",
        "holidays": "\n".join(defaults.holidays or []),
        "max_attempts": defaults.max_attempts,
        "first_backoff_seconds": defaults.first_backoff_seconds,
        "max_backoff_seconds": defaults.max_backoff_seconds})
    type_forms = [(kind, forms["types"][kind.code] if kind.code in forms.get("types", {})
                   else _type_form(kind)) for kind in message_types(session)]
    settings = current_app.config["HERALD"]
    return render_template(
        "ops/settings/index.html", org=org, organisations=_organisations(session),
        seller=forms.get("seller") or SellerForm(formdata=None, data=_seller_data(org)),
        branding=forms.get("branding") or BrandingForm(formdata=None, data={
            "primary_colour": org.primary_colour if org else "#1d4ed8",
            "accent_colour": org.accent_colour if org else "#0f172a"}),
        sending=sending, defaults=defaults, type_forms=type_forms,
        channels=channel_overview(settings), testable=TESTABLE, target_labels=TARGET_LABELS,
        test_form=ChannelTestForm(formdata=None), channel_names=CHANNELS), status


@bp.route("/settings")
@settings_admin_required
def settings_page():
    """Every setting on one page, the seller chosen by ``?organisation=`` (else the first)."""
    session = db_session()
    org_id = request.args.get("organisation", type=int)
    org = _organisation(session, org_id) if org_id else session.scalars(
        sa.select(Organisation).order_by(Organisation.id).limit(1)).first()
    return _page(session, org)


def _back(org: Organisation | None) -> Response:
    return redirect(url_for("ops.settings_page", organisation=org.id if org else None))


@bp.route("/settings/seller", methods=["POST"], defaults={"org_id": None})
@bp.route("/settings/organisations/<int:org_id>/seller", methods=["POST"])
@settings_admin_required
def save_seller(org_id: int | None):
    """Change the seller's details (or set the first seller up)."""
    session = db_session()
    org = _organisation(session, org_id) if org_id is not None else None
    form = SellerForm()
    if not form.validate_on_submit():
        return _page(session, org, status=422, seller=form)
    try:
        if org is None:
            org = Organisation(**form.values())
            session.add(org)
            session.flush()
            record_event(session, SETTINGS_SUBJECT, f"organisation:{org.id}",
                         "settings.seller_created", {"values": form.values()}, actor=actor())
            changed: object = True
        else:
            changed = update_seller(session, org, form.values(), actor=actor())
    except sa.exc.IntegrityError:
        session.rollback()
        form.vat_id.errors = [_("VAT ID: another seller already has this VAT ID.")]
        return _page(session, session.get(Organisation, org_id) if org_id else None,
                     status=422, seller=form)
    session.commit()
    flash(_("Seller details saved.") if changed else _("Nothing changed."), "info")
    return _back(org)


@bp.route("/settings/organisations/<int:org_id>/branding", methods=["POST"])
@settings_admin_required
def save_branding(org_id: int):
    """Change the logo and colours."""
    session = db_session()
    org = _organisation(session, org_id)
    form = BrandingForm()
    logo = None
    valid = form.validate_on_submit()
    upload = form.logo.data
    if valid and upload and getattr(upload, "filename", ""):
        data = upload.read()
        try:
            logo = (data, check_logo(data))
        except LogoError as exc:
            form.logo.errors = [str(exc)]
            valid = False
    if not valid:
        return _page(session, org, status=422, branding=form)
    changed = update_branding(session, org, {"primary_colour": form.primary_colour.data.lower(),
                                             "accent_colour": form.accent_colour.data.lower()},
                              logo=logo, remove_logo=bool(form.remove_logo.data) and logo is None,
                              actor=actor())
    session.commit()
    flash(_("Branding saved.") if changed else _("Nothing changed."), "info")
    return _back(org)


@bp.route("/settings/organisations/<int:org_id>/logo")
@settings_admin_required
def settings_logo(org_id: int) -> Response:
    """The stored logo, served as an image (an SVG in an <img> runs no script)."""
    org = _organisation(db_session(), org_id)
    if not org.logo:
        abort(404)
    response = current_app.response_class(org.logo, mimetype=org.logo_mime_type)
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response.headers["Content-Disposition"] = "inline; filename=logo"
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.route("/settings/sending", methods=["POST"])
@settings_admin_required
def save_sending():
    """Change the send window, holidays and retry policy."""
    session = db_session()
    org_id = request.form.get("organisation", type=int)
    org = session.get(Organisation, org_id) if org_id else None
    form = SendingForm()
    if not form.validate_on_submit():
        return _page(session, org, status=422, sending=form)
    changed = update_delivery_defaults(session, form.values(), actor=actor())
    session.commit()
    flash(_("Sending defaults saved. New runs start from them; workers use the retry "
            "policy from their next start.") if changed else _("Nothing changed."), "info")
    return _back(org)


@bp.route("/settings/message-types/<code>", methods=["POST"])
@settings_admin_required
def save_message_type(code: str):
    """Change one message type's default channels and whether it is mandatory."""
    session = db_session()
    org_id = request.form.get("organisation", type=int)
    org = session.get(Organisation, org_id) if org_id else None
    kinds = {kind.code: kind for kind in message_types(session)}
    if code not in kinds:
        abort(404)
    form = _type_form(kinds[code], formdata=request.form)
    if not form.validate_on_submit():
        return _page(session, org, status=422, types={code: form})
    ordered = [c.value for c in DEFAULT_CHANNELS if c.value in form.default_channels.data]
    changed = update_message_type(session, code, mandatory=bool(form.mandatory.data),
                                  default_channels=ordered, actor=actor())
    session.commit()
    flash(_("Message type saved.") if changed else _("Nothing changed."), "info")
    return _back(org)


@bp.route("/settings/channels/<name>/test", methods=["POST"])
@settings_admin_required
def test_channel(name: str):
    """Send a real test message now; answers the inline result (htmx) or the page."""
    try:
        channel = ChannelName(name)
    except ValueError:
        abort(404)
    if channel not in TESTABLE:
        abort(404)
    session = db_session()
    form = ChannelTestForm()
    if not form.validate_on_submit():
        abort(400)
    org_id = request.form.get("organisation", type=int)
    org = session.get(Organisation, org_id) if org_id else session.scalars(
        sa.select(Organisation).order_by(Organisation.id).limit(1)).first()
    ok, detail = True, ""
    try:
        targets = send_test(session, current_app.config["HERALD"], channel,
                            form.target.data or "", user=current_user, org=org, actor=actor())
        detail = ", ".join(targets)
    except TestRefused as exc:
        ok, detail = False, str(exc)
    except ChannelError as exc:
        ok, detail = False, _("The %(channel)s peer refused the test: %(reason)s",
                              channel=CHANNELS[channel.value], reason=exc.reason[:300])
    session.commit()  # the event, sent or failed
    if request.headers.get("HX-Request"):
        return render_template("ops/settings/_test_result.html", channel=channel, ok=ok,
                               detail=detail), 200
    flash(_("Test sent to %(targets)s.", targets=detail) if ok else detail,
          "info" if ok else "error")
    return redirect(url_for("ops.settings_page", organisation=org.id if org else None), 303)
