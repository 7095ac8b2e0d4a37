"""/api/v1 runs and waves: create a run over issued documents, steer its waves, watch progress."""

from __future__ import annotations

from datetime import date

from distribution.runs import RunError, WaveOptions, cancel_wave, pause_wave, start_wave
from distribution.waves import Run, Wave
from portal.api import bp
from portal.api.auth import current_caller
from portal.api.common import answer, not_found, settings
from portal.api.errors import ApiError
from portal.api.spec import body, operation
from portal.db import db_session
from portal.models import CustomerKind, DocumentKind
from portal.ops.run_status import run_status
from portal.runs import RunSelection, create_document_run

DATE = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$",
        "description": "a date as YYYY-MM-DD"}
COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
RUN_SCHEMA = {
    "type": "object", "required": ["id", "name", "state", "total", "done", "waves"],
    "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"},
        "message_type": {"type": "string"}, "created_by": {"type": "string"},
        "state": {"type": "string"}, "total": {"type": "integer"},
        "done": {"type": "integer"}, "percent": {"type": "integer"},
        "by_state": COUNTS,
        "waves": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "integer"}, "sequence": {"type": "integer"},
            "state": {"type": "string"}, "total": {"type": "integer"},
            "done": {"type": "integer"}, "by_state": COUNTS}}},
    },
}


def run_json(run: Run) -> dict:
    """A run's progress as the API shows it."""
    status = run_status(db_session(), run)
    return {"id": run.id, "name": run.name, "message_type": run.message_type,
            "created_by": run.created_by, "state": status.state, "total": status.total,
            "done": status.done, "percent": status.percent, "by_state": dict(status.by_state),
            "waves": [{"id": w.wave.id, "sequence": w.wave.sequence,
                       "state": w.wave.state.value, "total": w.total, "done": w.done,
                       "by_state": dict(w.by_state)} for w in status.waves]}


def _date(value: str | None, field: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(422, "invalid_value", f"{field} must be a real date as YYYY-MM-DD.",
                       field) from None


@operation(bp, "/runs", "POST", tag="runs", scope="runs:write",
           summary="Create a run over issued documents",
           body={"type": "object", "additionalProperties": False, "required": ["name"],
                 "properties": {
                     "name": {"type": "string", "minLength": 1, "maxLength": 200},
                     "kind": {"enum": ["invoice", "credit_note"], "default": "invoice"},
                     "issued_from": DATE, "issued_to": DATE,
                     "customer_kind": {"enum": ["consumer", "business"]},
                     "unpaid_only": {"type": "boolean", "default": False},
                     "wave_size": {"type": "integer", "minimum": 1},
                     "rate_per_minute": {"type": "number", "exclusiveMinimum": 0,
                                         "maximum": 100000},
                     "auto_continue": {"type": "boolean", "default": True}}},
           responses={201: ("Created; its waves are drafts until started.", RUN_SCHEMA)})
def create():
    """A run over the issued documents selected (those already sent are skipped), split in
    waves. Start its first wave with POST /api/v1/waves/{id}/start."""
    data = body()
    selection = RunSelection(
        kind=DocumentKind(data.get("kind", "invoice")),
        issued_from=_date(data.get("issued_from"), "issued_from"),
        issued_to=_date(data.get("issued_to"), "issued_to"),
        customer_kind=CustomerKind(data["customer_kind"]) if "customer_kind" in data else None,
        unpaid_only=data.get("unpaid_only", False))
    options = WaveOptions(wave_size=data.get("wave_size"),
                          rate_per_minute=float(data.get("rate_per_minute", 60.0)),
                          auto_continue=data.get("auto_continue", True))
    config = settings()
    try:
        summary = create_document_run(db_session(), selection, options, name=data["name"],
                                      public_url=config.public_url,
                                      created_by=current_caller().actor,
                                      link_days=config.pay_link_days_after_due)
    except RunError as exc:
        raise ApiError(422, "invalid_value", f"{exc}.", None) from None
    return answer(run_json(summary.run), 201, location=f"/api/v1/runs/{summary.run.id}")


@operation(bp, "/runs/<int:run_id>", "GET", tag="runs", summary="A run's progress",
           responses={200: ("The run with its waves and deliveries per state.", RUN_SCHEMA)})
def get_run(run_id: int):
    """How far the run is: deliveries per state, per wave."""
    run = db_session().get(Run, run_id)
    if run is None:
        raise not_found(f"run with id {run_id}", "run_id")
    return answer(run_json(run))


WAVE_BODY = {"type": "object", "additionalProperties": False,
             "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 300,
                                       "description": "why (logged)"}}}
WAVE_RESPONSES = {200: ("The run after the change.", RUN_SCHEMA)}


@operation(bp, "/waves/<int:wave_id>/start", "POST", tag="runs", scope="runs:write",
           summary="Start or resume a wave", body=WAVE_BODY, responses=WAVE_RESPONSES)
def start_wave_(wave_id: int):
    """A draft or paused wave starts releasing its deliveries (resume after a pause)."""
    return _wave_action(wave_id, "start")


@operation(bp, "/waves/<int:wave_id>/pause", "POST", tag="runs", scope="runs:write",
           summary="Pause a wave", body=WAVE_BODY, responses=WAVE_RESPONSES)
def pause_wave_(wave_id: int):
    """A running wave stops releasing; released deliveries not yet picked up go back."""
    return _wave_action(wave_id, "pause")


@operation(bp, "/waves/<int:wave_id>/cancel", "POST", tag="runs", scope="runs:write",
           summary="Cancel a wave", body=WAVE_BODY, responses=WAVE_RESPONSES)
def cancel_wave_(wave_id: int):
    """Cancel what the wave has not sent yet."""
    return _wave_action(wave_id, "cancel")


def _wave_action(wave_id: int, action: str):
    session = db_session()
    wave = session.get(Wave, wave_id)
    if wave is None:
        raise not_found(f"wave with id {wave_id}", "wave_id")
    actor = current_caller().actor
    reason = body().get("reason") or f"by {actor}"
    try:
        if action == "start":
            start_wave(session, wave_id, actor=actor)
        elif action == "pause":
            pause_wave(session, wave_id, actor=actor, reason=reason)
        else:
            cancel_wave(session, wave_id, actor=actor, reason=reason)
    except RunError as exc:
        raise ApiError(409, "invalid_state", f"{exc}.", "wave_id") from None
    return answer(run_json(session.get(Run, wave.run_id)))
