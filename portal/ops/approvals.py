"""The Approvals page: finance approvers decide refund and credit requests above the limit.

Only finance approvers and administrators may see or decide requests (others get
403). Each decision is made once (a conditional update decides between two
approvers at the same moment), carries a note and is logged with the actor.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField, TextAreaField
from wtforms.validators import AnyOf, Length

from portal.db import db_session
from portal.formatting import money
from portal.models import Role
from portal.models.refunds import RefundRequest
from portal.ops import bp
from portal.ops.access import actor, staff_required
from portal.refunds import RefundError, decide, pending_requests, recent_decisions

APPROVERS = frozenset({Role.FINANCE_APPROVER, Role.ADMIN})
KINDS = {"refund": _l("Refund"), "credit": _l("Credit note")}
STATUSES = {"pending": _l("Waiting"), "approved": _l("Approved"), "rejected": _l("Rejected")}
CONTEXT_LABELS = {"call_id": _l("Call"), "agent": _l("Agent"), "ticket_id": _l("Ticket")}


class DecisionForm(FlaskForm):
    """Approve or reject one request, with a note (required to reject)."""

    decision = HiddenField(validators=[AnyOf(["approve", "reject"])])
    note = TextAreaField(_l("Note"), validators=[Length(max=1000)])


def may_approve() -> bool:
    """True when the signed-in user may decide refund and credit requests."""
    return current_user.is_authenticated and current_user.role in APPROVERS


def approver_required(view: Callable) -> Callable:
    """Allow finance approvers and administrators; other staff and customers get 403."""

    @wraps(view)
    @staff_required
    def wrapped(*args, **kwargs):
        if not may_approve():
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def _page(status: int = 200, error: str | None = None, failed_id: int | None = None,
          form: DecisionForm | None = None):
    session = db_session()
    return render_template("ops/approvals/index.html", pending=pending_requests(session),
                           decided=recent_decisions(session), kinds=KINDS, statuses=STATUSES,
                           context_labels=CONTEXT_LABELS, error=error, failed_id=failed_id,
                           failed_form=form), status


@bp.route("/approvals")
@approver_required
def approvals():
    """Requests waiting for a decision, oldest first, and the latest decisions."""
    return _page()


@bp.route("/approvals/<int:request_id>", methods=["POST"])
@approver_required
def decide_request(request_id: int) -> Response | tuple[str, int]:
    """Approve or reject one request with a note; logged with who decided."""
    session = db_session()
    request = session.get(RefundRequest, request_id)
    if request is None:
        abort(404)
    form = DecisionForm()
    if not form.validate_on_submit():
        return _page(422, _("Choose approve or reject, with a note of at most 1000 "
                            "characters."), request_id, form)
    note = (form.note.data or "").strip()
    approve = form.decision.data == "approve"
    if not approve and not note:
        return _page(422, _("Say why in the note: the caller's system and the customer's "
                            "file show it."), request_id, form)
    try:
        decide(session, request, approve=approve, actor=actor(), note=note)
    except RefundError as error:
        # Nothing was changed: the decision was refused before any write.
        session.refresh(request)
        if request.decided_by is not None:
            message = _("Request %(id)d was already decided by %(who)s; nothing was changed.",
                        id=request.id, who=request.decided_by)
        else:
            message = _("Not decided: %(reason)s", reason=str(error))
        return _page(409, message, request_id, form)
    if approve:
        flash(_("Request %(id)d approved: %(amount)s on %(number)s.", id=request.id,
                amount=money(request.amount, request.currency),
                number=request.invoice.number), "info")
    else:
        flash(_("Request %(id)d rejected.", id=request.id), "info")
    return redirect(url_for("ops.approvals"), 303)
