"""The delivery log in the ops console: search, one invoice's trail, CSV, chain check.

Any staff member may search and read (support agents answer "did my invoice go
out?"); checking the chain is open to all staff too, since it changes nothing.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa
from flask import Response, abort, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, DeliveryState, Message
from distribution.events import EventChainHead, verify_chain
from distribution.recipients import Address, Recipient
from portal.audit_trail import (
    find_invoice,
    invoice_trail,
    message_subjects,
    safe_cell,
    trail_csv,
)
from portal.db import db_session
from portal.models import Customer, Invoice
from portal.ops import bp
from portal.ops.access import staff_required
from portal.ops.labels import CHANNELS, DELIVERY_STATES
from portal.recipients_sync import recipient_key

PAGE = 50
CSV_LIMIT = 100_000


class LogSearchForm(FlaskForm):
    """Filters of the delivery log (a GET form: bookmarkable, no CSRF needed to read)."""

    class Meta:
        csrf = False

    customer = StringField(_l("Customer number"), validators=[Optional(), Length(max=40)])
    email = StringField(_l("Email address"), validators=[Optional(), Length(max=254)])
    invoice = StringField(_l("Invoice number"), validators=[Optional(), Length(max=64)])
    channel = SelectField(_l("Channel"), validators=[Optional()], choices=[
        SelectChoice("", _l("Any channel")),
        *(SelectChoice(c.value, CHANNELS[c.value]) for c in ChannelName)], default="")
    state = SelectField(_l("State"), validators=[Optional()], choices=[
        SelectChoice("", _l("Any state")),
        *(SelectChoice(s.value, DELIVERY_STATES[s.value]) for s in DeliveryState)], default="")
    since = DateField(_l("Changed from"), validators=[Optional()])
    until = DateField(_l("Changed up to"), validators=[Optional()])


def _query(form: LogSearchForm) -> sa.Select | None:
    """The deliveries the filters select, newest first; None when nothing can match."""
    session = db_session()
    query = (sa.select(Delivery.id, Delivery.channel, Delivery.state, Delivery.updated_at,
                       Delivery.attempts, Delivery.last_error, Message.subject_key,
                       Message.message_type, Recipient.recipient_key, Recipient.name,
                       Address.value.label("address"))
             .join(Message, Message.id == Delivery.message_id)
             .join(Recipient, Recipient.id == Message.recipient_id)
             .outerjoin(Address, Address.id == Delivery.address_id)
             .order_by(Delivery.id.desc()))
    if form.customer.data:
        ids = session.scalars(sa.select(Customer.id).where(
            Customer.number == form.customer.data.strip())).all()
        if not ids:
            return None
        query = query.where(Recipient.recipient_key.in_([recipient_key(i) for i in ids]))
    if form.email.data:
        query = query.where(sa.func.lower(Address.value) == form.email.data.strip().lower())
    if form.invoice.data:
        invoices = find_invoice(session, form.invoice.data.strip())
        if not invoices:
            return None
        about = []
        for invoice in invoices:
            exact, prefixes = message_subjects(invoice)
            about += [Message.subject_key.in_(exact),
                      *(Message.subject_key.startswith(p, autoescape=True) for p in prefixes)]
        query = query.where(sa.or_(*about))
    if form.channel.data:
        query = query.where(Delivery.channel == ChannelName(form.channel.data))
    if form.state.data:
        query = query.where(Delivery.state == DeliveryState(form.state.data))
    if form.since.data:
        query = query.where(Delivery.updated_at >= datetime.combine(form.since.data, time(),
                                                                    UTC))
    if form.until.data:
        query = query.where(Delivery.updated_at < datetime.combine(
            form.until.data + timedelta(days=1), time(), UTC))
    return query


@bp.route("/log")
@staff_required
def delivery_log() -> str | Response:
    """Search deliveries; ``?format=csv`` exports the whole result."""
    form = LogSearchForm(request.args)
    searched = any(request.args.get(name) for name in form.data)
    # No stored value holds a NUL, and PostgreSQL refuses one in a query: nothing matches.
    nul = any("\x00" in value for value in request.args.values())
    rows, next_before = [], None
    if searched and not nul and form.validate():
        query = _query(form)
        if query is not None:
            if request.args.get("format") == "csv":
                return _csv_response(db_session().execute(query.limit(CSV_LIMIT)),
                                     "delivery-log.csv")
            before = request.args.get("before", type=int)
            if before:
                query = query.where(Delivery.id < before)
            rows = db_session().execute(query.limit(PAGE + 1)).all()
            if len(rows) > PAGE:
                rows = rows[:PAGE]
                next_before = rows[-1].id
    args = {k: v for k, v in request.args.items() if k not in ("before", "format")}
    trails = find_invoice(db_session(), form.invoice.data.strip()) \
        if searched and not nul and form.invoice.data else []
    return render_template("ops/log/index.html", form=form, rows=rows, searched=searched,
                           trails=trails,
                           next_url=url_for("ops.delivery_log", **args, before=next_before)
                           if next_before else None,
                           csv_url=url_for("ops.delivery_log", **args, format="csv"))


@bp.route("/invoices/<int:invoice_id>/trail")
@staff_required
def invoice_trail_page(invoice_id: int) -> str | Response:
    """Everything that happened to one invoice; ``?format=csv`` to export."""
    session = db_session()
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        abort(404)
    entries = invoice_trail(session, invoice)
    if request.args.get("format") == "csv":
        return Response(trail_csv(entries), mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="trail-{invoice.id}.csv"'})
    return render_template("ops/log/trail.html", invoice=invoice, entries=entries)


@bp.route("/audit", methods=["GET", "POST"])
@staff_required
def audit() -> str:
    """Check the event log's hash chain on request; show the first broken link if any."""
    session = db_session()
    events = session.scalar(sa.select(EventChainHead.count)) or 0
    result = None
    if request.method == "POST":
        form = FlaskForm()  # the CSRF token alone
        if not form.validate_on_submit():
            abort(400)
        result = {"broken": verify_chain(session), "checked_at": datetime.now(UTC)}
    return render_template("ops/log/audit.html", events=events, result=result)


def _csv_response(rows, filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["delivery_id", "subject", "message_type", "recipient", "name", "channel",
                     "address", "state", "attempts", "updated_at", "last_error"])
    for row in rows:
        writer.writerow([row.id, row.subject_key, row.message_type, row.recipient_key,
                         safe_cell(row.name), row.channel.value, safe_cell(row.address or ""),
                         row.state.value, row.attempts, row.updated_at.isoformat(),
                         safe_cell(row.last_error or "")])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})

