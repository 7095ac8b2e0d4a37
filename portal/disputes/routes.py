"""The customer's disputes: open one about an invoice, follow it, write, withdraw.

Every lookup is scoped to the signed-in customer: another customer's invoice,
line or dispute is a 404, never a 403 that would confirm it exists.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.orm import Session, selectinload
from werkzeug.wrappers import Response

from portal.db import db_session
from portal.disputes import bp
from portal.disputes.forms import DisputeForm, MessageForm, WithdrawForm
from portal.disputes.service import (
    DisputeError,
    active_dispute,
    add_message,
    open_dispute,
    withdraw,
)
from portal.invoices.queries import customer_invoice
from portal.models import Invoice
from portal.models.disputes import Dispute, DisputeLine, DisputeReason, MessageAuthor


def _customer_id() -> int:
    # Staff handle disputes in the ops console, not here.
    if current_user.customer_id is None:
        abort(403)
    return current_user.customer_id


def _actor() -> str:
    return f"portal:user:{current_user.id}"


def _dispute(session: Session, dispute_id: int) -> Dispute:
    dispute = session.scalars(
        sa.select(Dispute).where(Dispute.id == dispute_id, Dispute.customer_id == _customer_id())
        .options(selectinload(Dispute.lines).selectinload(DisputeLine.invoice_line),
                 selectinload(Dispute.messages), selectinload(Dispute.invoice))).first()
    if dispute is None:
        abort(404)
    return dispute


@bp.route("/disputes")
@login_required
def index() -> str:
    """My disputes, newest first."""
    disputes = db_session().scalars(
        sa.select(Dispute).where(Dispute.customer_id == _customer_id())
        .options(selectinload(Dispute.invoice)).order_by(Dispute.id.desc())).all()
    return render_template("disputes/index.html", disputes=disputes)


@bp.route("/invoices/<path:number>/dispute", methods=["GET", "POST"])
@login_required
def new(number: str) -> str | Response:
    """The dispute form for one of the customer's invoices; posting it opens the dispute."""
    session = db_session()
    invoice = customer_invoice(session, _customer_id(), number)
    if invoice is None:
        abort(404)
    existing = active_dispute(session, invoice)
    if existing is not None:
        flash(_("This invoice already has an open dispute; you can add a message to it."), "info")
        return redirect(url_for("disputes.show", dispute_id=existing.id))
    form = DisputeForm()
    chosen = _chosen_lines(invoice) if request.method == "POST" else []
    error = None
    if form.validate_on_submit():
        try:
            dispute = open_dispute(
                session, invoice, reason=DisputeReason(form.reason.data),
                description=form.description.data, lines=chosen,
                amount=form.amount.parsed, user=current_user, actor=_actor())
        except DisputeError as exc:
            field = getattr(form, exc.field, None) if exc.field else None
            if field is not None:
                field.errors = [*field.errors, str(exc)]
            else:
                error = str(exc)
        else:
            flash(_("Your dispute is registered. We stopped the payment reminders for this "
                    "invoice while we look into it."), "info")
            return redirect(url_for("disputes.show", dispute_id=dispute.id))
    status = 422 if request.method == "POST" else 200
    return render_template("disputes/new.html", invoice=invoice, form=form, error=error,
                           chosen={line.id for line in chosen}), status


def _chosen_lines(invoice: Invoice) -> list:
    """The invoice lines ticked in the form; a line of any other invoice is a 404."""
    by_id = {str(line.id): line for line in invoice.lines}
    values = request.form.getlist("lines")
    if any(value not in by_id for value in values):
        abort(404)
    return [by_id[value] for value in dict.fromkeys(values)]


@bp.route("/disputes/<int:dispute_id>")
@login_required
def show(dispute_id: int) -> str:
    """One dispute: where it stands, what it is about, and its messages."""
    dispute = _dispute(db_session(), dispute_id)
    return render_template("disputes/show.html", dispute=dispute, message_form=MessageForm(),
                           withdraw_form=WithdrawForm())


@bp.route("/disputes/<int:dispute_id>/messages", methods=["POST"])
@login_required
def post_message(dispute_id: int) -> str | Response:
    """Add the customer's message to the thread."""
    session = db_session()
    dispute = _dispute(session, dispute_id)
    form = MessageForm()
    if form.validate_on_submit():
        try:
            add_message(session, dispute, form.body.data, author=MessageAuthor.CUSTOMER,
                        user=current_user, actor=_actor())
        except DisputeError as exc:
            form.body.errors = [str(exc)]
        else:
            flash(_("Your message was added."), "info")
            return redirect(url_for("disputes.show", dispute_id=dispute.id, _anchor="thread"))
    return render_template("disputes/show.html", dispute=dispute, message_form=form,
                           withdraw_form=WithdrawForm()), 422


@bp.route("/disputes/<int:dispute_id>/withdraw", methods=["POST"])
@login_required
def withdraw_dispute(dispute_id: int) -> Response:
    """The customer withdraws the dispute; the invoice becomes payable again."""
    session = db_session()
    dispute = _dispute(session, dispute_id)
    if WithdrawForm().validate_on_submit():
        try:
            withdraw(session, dispute, user=current_user, actor=_actor())
        except DisputeError as exc:
            flash(str(exc), "error")
        else:
            flash(_("You withdrew the dispute. Invoice %(number)s is payable again.",
                    number=dispute.invoice.number), "info")
    return redirect(url_for("disputes.show", dispute_id=dispute.id))
