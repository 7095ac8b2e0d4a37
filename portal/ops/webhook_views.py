"""Webhook endpoints in the ops console (administrators only): register, disable, remove,
read each endpoint's delivery log and replay one delivery.

A new endpoint's signing secret is shown once, on the page that answers its
creation (never in a redirect, a flash message or the log).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, make_response, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import SelectField, SelectMultipleField, StringField, widgets
from wtforms.validators import DataRequired, Length, Optional

from distribution.webhook_endpoints import (
    EndpointError,
    register_endpoint,
    remove_endpoint,
    update_endpoint,
)
from distribution.webhook_models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryState,
    WebhookEndpoint,
    WebhookFormat,
)
from distribution.webhook_sender import replay
from distribution.webhooks import EVENT_TYPES
from portal.db import db_session
from portal.ops import bp
from portal.ops.access import actor
from portal.ops.staff_views import ConfirmForm, admin_required

LOG_LIMIT = 100
STATE_LABELS = {
    WebhookDeliveryState.PENDING: _l("Waiting to retry"),
    WebhookDeliveryState.SENDING: _l("Sending"),
    WebhookDeliveryState.SUCCEEDED: _l("Delivered"),
    WebhookDeliveryState.FAILED: _l("Failed (gave up)"),
    WebhookDeliveryState.CANCELLED: _l("Cancelled (endpoint disabled)"),
}


class EndpointForm(FlaskForm):
    """A new endpoint: where, which events, in which format."""

    url = StringField(_l("URL (https://...)"), validators=[DataRequired(), Length(max=500)])
    description = StringField(_l("Description (who receives it)"),
                              validators=[Optional(), Length(max=200)])
    body_format = SelectField(_l("Format"), choices=[
        (WebhookFormat.HERALD.value, _l("Herald JSON event, signed")),
        (WebhookFormat.SLACK.value, _l("Slack-compatible text (finance alerts)"))])
    event_types = SelectMultipleField(_l("Events"), validators=[DataRequired()],
                                      choices=[(t, t) for t in EVENT_TYPES],
                                      option_widget=widgets.CheckboxInput(),
                                      widget=widgets.ListWidget(prefix_label=False))


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _index(form: EndpointForm, *, created: WebhookEndpoint | None = None,
           status: int = 200) -> Response:
    session = db_session()
    endpoints = session.scalars(sa.select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
    waiting = dict(session.execute(
        sa.select(WebhookDelivery.endpoint_id, sa.func.count())
        .where(WebhookDelivery.state.in_((WebhookDeliveryState.PENDING,
                                          WebhookDeliveryState.SENDING)))
        .group_by(WebhookDelivery.endpoint_id)).all())
    return _no_store(make_response(render_template(
        "ops/webhooks/index.html", endpoints=endpoints, waiting=waiting, form=form,
        confirm_form=ConfirmForm(), created=created), status))


@bp.route("/webhooks")
@admin_required
def webhooks() -> Response:
    """Every webhook endpoint, with what it receives and how many deliveries wait."""
    return _index(EndpointForm(prefix="hook"))


@bp.route("/webhooks", methods=["POST"])
@admin_required
def webhook_create() -> Response:
    """Register an endpoint and show its secret once."""
    form = EndpointForm(prefix="hook")
    if not form.validate_on_submit():
        return _index(form, status=400)
    try:
        endpoint = register_endpoint(
            db_session(), form.url.data, list(form.event_types.data), actor=actor(),
            body_format=WebhookFormat(form.body_format.data),
            description=form.description.data or "")
    except EndpointError as error:
        target = form.url if error.field == "url" else form.event_types
        target.errors = [_("Enter an https:// address (plain http only to this machine), "
                           "without user name or password.") if error.field == "url"
                         else _("Choose at least one event.")]
        return _index(form, status=400)
    return _index(EndpointForm(prefix="hook"), created=endpoint, status=201)


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    endpoint = db_session().get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        abort(404)
    return endpoint


@bp.route("/webhooks/<int:endpoint_id>")
@admin_required
def webhook_show(endpoint_id: int) -> Response:
    """One endpoint's delivery log: attempts, status codes, response times, next retry."""
    session = db_session()
    endpoint = _endpoint(endpoint_id)
    deliveries = session.scalars(
        sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.id.desc()).limit(LOG_LIMIT)).all()
    attempts: dict[int, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
    if deliveries:
        for attempt in session.scalars(sa.select(WebhookAttempt).where(
                WebhookAttempt.delivery_id.in_(list(attempts))).order_by(WebhookAttempt.id)):
            attempts[attempt.delivery_id].append(attempt)
    return _no_store(make_response(render_template(
        "ops/webhooks/show.html", endpoint=endpoint, deliveries=deliveries, attempts=attempts,
        states=STATE_LABELS, confirm_form=ConfirmForm(), limit=LOG_LIMIT)))


@bp.route("/webhooks/<int:endpoint_id>/toggle", methods=["POST"])
@admin_required
def webhook_toggle(endpoint_id: int) -> Response:
    """Disable an endpoint (it gets nothing more) or enable it again."""
    endpoint = _endpoint(endpoint_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    update_endpoint(db_session(), endpoint, enabled=not endpoint.enabled, actor=actor())
    flash(_("The endpoint is enabled: it receives the events that happen from now on.")
          if endpoint.enabled else
          _("The endpoint is disabled: nothing more is sent to it."), "info")
    return redirect(url_for("ops.webhook_show", endpoint_id=endpoint.id))


@bp.route("/webhooks/<int:endpoint_id>/remove", methods=["POST"])
@admin_required
def webhook_remove(endpoint_id: int) -> Response:
    """Remove an endpoint with its delivery log."""
    endpoint = _endpoint(endpoint_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    remove_endpoint(db_session(), endpoint, actor=actor())
    flash(_("The endpoint is removed."), "info")
    return redirect(url_for("ops.webhooks"))


@bp.route("/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/replay",
          methods=["POST"])
@admin_required
def webhook_replay(endpoint_id: int, delivery_id: int) -> Response:
    """Send one delivery again, with a fresh signature."""
    session = db_session()
    endpoint = _endpoint(endpoint_id)
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if not endpoint.enabled:
        flash(_("Enable the endpoint before replaying a delivery."), "error")
    elif replay(session, delivery, actor=actor()):
        from portal.api.webhooks import queue_webhook_pass

        queue_webhook_pass(session)
        flash(_("Delivery %(id)s is queued to be sent again.", id=delivery.id), "info")
    else:
        flash(_("Delivery %(id)s is being sent right now; try again in a minute.",
                id=delivery.id), "error")
    return redirect(url_for("ops.webhook_show", endpoint_id=endpoint.id))

