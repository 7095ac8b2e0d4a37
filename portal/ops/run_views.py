"""Runs and waves in the ops console: plan with a forecast, create, watch live, steer.

Every staff member may look; admins and billing operators may act. Each action
goes through distribution's own functions, which log it with the operator's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from distribution.planner import PlanError
from distribution.runs import (
    RunError,
    WaveOptions,
    cancel_wave,
    pause_wave,
    plan_wave,
    set_rate,
    start_wave,
)
from distribution.sqltypes import utcnow
from distribution.waves import Run, Wave
from portal.db import db_session
from portal.ops import bp
from portal.ops.access import actor, may_operate_runs, run_operator_required, staff_required
from portal.ops.charts import ForecastHour, forecast_chart, funnel_chart, rate_chart
from portal.ops.run_forms import RunForm, WaveActionForm, WaveRateForm
from portal.ops.run_status import (
    fixed_rate_hours,
    forecast_hours,
    run_list,
    run_status,
    sent_per_minute,
)
from portal.ops.settings_store import prefill_run_form
from portal.runs import create_document_run


@dataclass
class Preview:
    """What a run would do, computed by creating it and rolling back."""

    documents: int
    already_sent: int
    deliveries: dict[str, int]
    fallbacks: int
    opted_out: int
    waves: int
    hours: list[ForecastHour]
    finish: datetime | None
    peak_contacts: float | None
    capacity: float | None

    @property
    def total_deliveries(self) -> int:
        return sum(self.deliveries.values())


@bp.route("/runs")
@staff_required
def runs() -> str:
    """The newest runs with their progress."""
    return render_template("ops/runs/index.html", runs=run_list(db_session()),
                           may_operate=may_operate_runs())


@bp.route("/runs/new", methods=["GET", "POST"])
@run_operator_required
def new_run() -> str | Response:
    """The run form; "Preview" shows counts per channel and the forecast, "Create" makes it."""
    form = RunForm()
    if request.method == "GET":
        prefill_run_form(form, db_session())  # the settings page's send window and holidays
    preview = None
    if form.validate_on_submit():
        if form.create.data:
            try:
                summary = create_document_run(
                    db_session(), form.selection(), form.options(),
                    name=form.name.data or _default_name(form),
                    public_url=current_app.config["HERALD"].public_url, created_by=actor())
            except (RunError, PlanError) as exc:
                flash(str(exc), "error")
            else:
                flash(_("Run created with %(count)d documents. Check the forecast, then start "
                        "the first wave.", count=summary.messages_created), "info")
                return redirect(url_for("ops.run", run_id=summary.run.id))
        else:
            try:
                preview = _preview(form)
            except (RunError, PlanError) as exc:
                flash(str(exc), "error")
    return render_template("ops/runs/new.html", form=form, preview=preview,
                           chart=_preview_chart(preview))


@bp.route("/runs/<int:run_id>")
@staff_required
def run(run_id: int) -> str:
    """One run: its waves, live progress, rates, contacts, funnel and forecast."""
    return render_template("ops/runs/show.html", **_run_context(run_id))


@bp.route("/runs/<int:run_id>/live")
@staff_required
def run_live(run_id: int) -> str:
    """The live part of the run page (htmx polls it)."""
    return render_template("ops/runs/_live.html", **_run_context(run_id))


@bp.route("/waves/<int:wave_id>/<any(start, pause, resume, cancel):action>", methods=["POST"])
@run_operator_required
def wave_action(wave_id: int, action: str) -> Response:
    """Start, pause, resume or cancel a wave; takes effect at the dispatcher's next tick."""
    session = db_session()
    wave = session.get(Wave, wave_id)
    if wave is None:
        abort(404)
    form = WaveActionForm()
    if not form.validate_on_submit():
        abort(400)
    reason = (form.reason.data or "").strip()
    try:
        if action in ("start", "resume"):
            start_wave(session, wave_id, actor=actor())
        elif action == "pause":
            pause_wave(session, wave_id, actor=actor(), reason=reason or _("paused by %(who)s",
                                                                           who=actor()))
        else:
            cancelled = cancel_wave(session, wave_id, actor=actor(),
                                    reason=reason or _("cancelled by an operator"))
            flash(_("%(count)d deliveries cancelled.", count=cancelled), "info")
    except RunError as exc:
        flash(str(exc), "error")
    else:
        flash(_("Wave %(sequence)d: %(action)s.", sequence=wave.sequence,
                action=_ACTION_NAMES[action]()), "info")
    return redirect(url_for("ops.run", run_id=wave.run_id))


@bp.route("/waves/<int:wave_id>/rate", methods=["POST"])
@run_operator_required
def wave_rate(wave_id: int) -> Response:
    """Change the release rate of a wave."""
    session = db_session()
    wave = session.get(Wave, wave_id)
    if wave is None:
        abort(404)
    form = WaveRateForm()
    if form.validate_on_submit():
        try:
            set_rate(session, wave_id, float(form.rate_per_minute.data), actor=actor())
        except RunError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Wave %(sequence)d now releases %(rate)s per minute.",
                    sequence=wave.sequence, rate=f"{form.rate_per_minute.data:g}"), "info")
    else:
        flash(" ".join(form.rate_per_minute.errors) or _("Enter a rate per minute."), "error")
    return redirect(url_for("ops.run", run_id=wave.run_id))


_ACTION_NAMES = {"start": lambda: _("started"), "resume": lambda: _("resumed"),
                 "pause": lambda: _("paused"), "cancel": lambda: _("cancelled")}


def _default_name(form: RunForm) -> str:
    kind = next(choice.label for choice in form.kind.choices if choice.value == form.kind.data)
    return f"{kind} {utcnow():%Y-%m-%d %H:%M}"


def _preview(form: RunForm) -> Preview:
    """Create the run inside a savepoint, read what it did, roll it back."""
    session = db_session()
    options = form.options()
    savepoint = session.begin_nested()
    try:
        summary = create_document_run(
            session, form.selection(), options, name=form.name.data or _default_name(form),
            public_url=current_app.config["HERALD"].public_url, created_by=actor())
        result = Preview(
            documents=summary.messages_created + summary.messages_existing,
            already_sent=summary.messages_existing, deliveries=dict(summary.deliveries),
            fallbacks=summary.fallbacks, opted_out=summary.opted_out,
            waves=len(summary.run.waves), hours=[], finish=None, peak_contacts=None,
            capacity=options.capacity_per_hour)
    finally:
        savepoint.rollback()
    result.hours, result.finish, result.peak_contacts = _forecast(options,
                                                                  result.total_deliveries)
    return result


def _forecast(options: WaveOptions, total: int
              ) -> tuple[list[ForecastHour], datetime | None, float | None]:
    """Releases per hour for ``total`` deliveries from now, as one wave with these options."""
    wave = Wave(rate_per_minute=options.rate_per_minute,
                window_start_hour=options.window_start_hour,
                window_end_hour=options.window_end_hour, weekdays=list(options.weekdays),
                holidays=list(options.holidays), window_time_zone=options.window_time_zone,
                capacity_per_hour=options.capacity_per_hour, contact_rate=options.contact_rate,
                decay=list(options.decay))
    now = utcnow()
    if options.capacity_per_hour:
        plan = plan_wave(wave, total, now)
        return ([ForecastHour(h.start, h.releases, h.forecast_contacts, h.capacity, h.open)
                 for h in plan.hours], plan.finish, plan.peak_contacts)
    hours, finish = fixed_rate_hours(wave, total, now)
    return hours, finish, None


def _preview_chart(preview: Preview | None):
    if preview is None or not preview.hours:
        return None
    return forecast_chart(preview.hours[:24 * 7], title=_("Forecast: releases and contacts per "
                                                          "hour"),
                          releases_label=_("releases per hour"),
                          contacts_label=_("forecast contacts per hour"),
                          capacity_label=_("support capacity per hour"))


def _run_context(run_id: int) -> dict:
    session = db_session()
    found = session.get(Run, run_id)
    if found is None:
        abort(404)
    status = run_status(session, found)
    rates = sent_per_minute(session, found)
    planned = sum(w.planned_per_minute for w in status.waves if w.wave.state.value == "running")
    rate_svg = rate_chart(rates, planned_per_bucket=planned or None,
                          title=_("Sent per minute, last hour"),
                          actual_label=_("sent per minute"),
                          planned_label=_("planned per minute"))
    funnel_names = {"planned": _("Planned"), "sent": _("Sent"), "delivered": _("Delivered"),
                    "viewed": _("Viewed"), "paid": _("Paid")}
    funnel_svg = funnel_chart([(funnel_names[name], count) for name, count in status.funnel],
                              title=_("Delivery funnel"))
    planned_wave = next((w.wave for w in status.waves if w.wave.plan and
                         w.wave.state.value in ("draft", "running", "paused")), None)
    forecast_svg = forecast_chart(
        forecast_hours(planned_wave.plan)[:24 * 7],
        title=_("Forecast of wave %(sequence)d: releases and contacts per hour",
                sequence=planned_wave.sequence),
        releases_label=_("releases per hour"), contacts_label=_("forecast contacts per hour"),
        capacity_label=_("support capacity per hour")) if planned_wave else None
    return {"status": status, "rate_chart": rate_svg, "rate_points": rates,
            "funnel_chart": funnel_svg, "forecast_chart": forecast_svg,
            "planned_wave": planned_wave, "may_operate": may_operate_runs(),
            "action_form": WaveActionForm(), "rate_form": WaveRateForm(), "now": utcnow()}

