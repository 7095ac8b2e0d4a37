"""Failures in the ops console: what did not go out, grouped by why, and what to do about it.

Failed and in-doubt deliveries, and deliveries still waiting for an address that
is dead, grouped by reason (see :mod:`portal.ops.failure_reasons`). Any staff
member may look; support agents may retry one delivery; billing operators and
admins may also retry a whole group and resend on another channel. Every action
goes through :mod:`distribution.operator_actions`, which logs it with the
person's name.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from distribution.bulk import among
from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, DeliveryState, Message
from distribution.events import Event
from distribution.operator_actions import (
    SKIP_ADDRESS_DEAD,
    SKIP_CHANGED,
    SKIP_MISSING,
    SKIP_NOT_RETRYABLE,
    ActionError,
    resend_on_channel,
    retry_deliveries,
)
from distribution.recipients import Address, Recipient
from portal.db import db_session
from portal.models import Invoice, Role
from portal.ops import bp
from portal.ops.access import RUN_OPERATORS, actor, staff_required
from portal.ops.failure_reasons import REASONS, reason_class
from portal.ops.labels import CHANNELS

# Staff who may retry one delivery (and, in the customer lookup, resend and issue links).
SUPPORT_ROLES = RUN_OPERATORS | {Role.SUPPORT_AGENT}
SHOWN = 2000  # newest failures read per page view; groups are counted over these
PER_GROUP = 50
SKIPPED = {SKIP_MISSING: _l("there is no such delivery"),
           SKIP_NOT_RETRYABLE: _l("it was sent or is still on its way; only failed and "
                                  "in-doubt deliveries are retried"),
           SKIP_ADDRESS_DEAD: _l("its address is dead; resend it on another channel"),
           SKIP_CHANGED: _l("it changed meanwhile; reload the page")}
SENT_STATES = (DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.VIEWED)


def may_support() -> bool:
    """True when the signed-in staff member may retry one delivery or help a customer."""
    return current_user.is_authenticated and current_user.role in SUPPORT_ROLES


def may_operate() -> bool:
    """True when the signed-in staff member may act on many deliveries at once."""
    return current_user.is_authenticated and current_user.role in RUN_OPERATORS


class RetryForm(FlaskForm):
    """Retry one delivery (the note is optional)."""

    note = StringField(_l("Note for the log"), validators=[Optional(), Length(max=300)])


class RetryGroupForm(FlaskForm):
    """Retry every failed and in-doubt delivery of one reason group (and channel)."""

    reason_class = HiddenField(validators=[DataRequired()])
    channel = HiddenField(validators=[Optional()])
    note = StringField(_l("Note for the log"), validators=[Optional(), Length(max=300)])


class ResendForm(FlaskForm):
    """Resend a delivery's message on another channel, with the reason why."""

    channel = SelectField(_l("Channel"), validators=[DataRequired()], choices=[])
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=300)])


@dataclass
class FailureRow:
    """One failed, in-doubt or dead-address delivery as the page lists it."""

    id: int
    state: DeliveryState
    channel: ChannelName
    address: str | None
    address_dead: bool
    attempts: int
    last_error: str | None
    recipient_key: str
    customer_name: str
    customer_id: int | None
    subject_key: str
    number: str | None
    invoice_id: int | None = None
    reached_by: list[str] = field(default_factory=list)  # channels the message got through on

    @property
    def retryable(self) -> bool:
        return self.state in (DeliveryState.FAILED, DeliveryState.IN_DOUBT) \
            and not self.address_dead


@dataclass
class FailureGroup:
    """Deliveries that failed for the same reason, with counts per channel."""

    reason: str
    rows: list[FailureRow] = field(default_factory=list)
    by_channel: Counter = field(default_factory=Counter)

    @property
    def label(self) -> str:
        return str(REASONS[self.reason])

    @property
    def retryable(self) -> int:
        return sum(1 for row in self.rows if row.retryable)


def _failure_query() -> sa.Select:
    waiting_for_dead = sa.and_(Delivery.state.in_((DeliveryState.PENDING,
                                                   DeliveryState.RELEASED)),
                               Address.dead_since.is_not(None))
    return (sa.select(Delivery.id, Delivery.state, Delivery.channel, Delivery.attempts,
                      Delivery.last_error, Delivery.message_id, Address.value.label("address"),
                      Address.dead_since, Recipient.recipient_key, Recipient.name,
                      Message.subject_key, Message.parameters)
            .join(Message, Message.id == Delivery.message_id)
            .join(Recipient, Recipient.id == Message.recipient_id)
            .outerjoin(Address, Address.id == Delivery.address_id)
            .where(sa.or_(Delivery.state.in_((DeliveryState.FAILED, DeliveryState.IN_DOUBT)),
                          waiting_for_dead))
            .order_by(Delivery.id.desc()))


def _customer_id(key: str) -> int | None:
    prefix, _sep, number = key.partition(":")
    return int(number) if prefix == "customer" and number.isdigit() else None


def _document(subject_key: str) -> tuple[int, str] | None:
    """(organisation id, number) of the document a message's subject names, if any."""
    parts = subject_key.split(":")
    if len(parts) >= 3 and parts[1].isdigit():
        return int(parts[1]), parts[2]
    return None


def count_failures(session, *, channel: str | None = None) -> int:
    """How many failed, in-doubt and dead-address deliveries there are (on ``channel``)."""
    query = _failure_query().order_by(None)
    if channel:
        query = query.where(Delivery.channel == ChannelName(channel))
    return session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))


def load_failures(session, *, channel: str | None = None) -> tuple[list[FailureGroup], int]:
    """The failures grouped by reason (largest group first), and how many were read."""
    query = _failure_query().limit(SHOWN)
    if channel:
        query = query.where(Delivery.channel == ChannelName(channel))
    raw = session.execute(query).all()
    rows = [FailureRow(
        id=r.id, state=r.state, channel=r.channel, address=r.address,
        address_dead=r.dead_since is not None, attempts=r.attempts, last_error=r.last_error,
        recipient_key=r.recipient_key, customer_name=r.name,
        customer_id=_customer_id(r.recipient_key), subject_key=r.subject_key,
        number=str(r.parameters.get("number")) if r.parameters.get("number") else None)
        for r in raw]
    _link_documents(session, rows)
    _reached(session, rows, {r.id: r.message_id for r in raw})
    groups: dict[str, FailureGroup] = {}
    for row in rows:
        reason = reason_class(row.last_error, state=row.state.value,
                              address_dead=row.address_dead)
        group = groups.setdefault(reason, FailureGroup(reason))
        group.rows.append(row)
        group.by_channel[row.channel.value] += 1
    return sorted(groups.values(), key=lambda g: (-len(g.rows), g.reason)), len(rows)


def _link_documents(session, rows: list[FailureRow]) -> None:
    wanted = {doc for row in rows if (doc := _document(row.subject_key))}
    if not wanted:
        return
    numbers = sorted({number for _org, number in wanted})
    found = {(org, number): invoice_id for invoice_id, org, number in session.execute(
        sa.select(Invoice.id, Invoice.organisation_id, Invoice.number)
        .where(among(session, Invoice.number, numbers)))}
    for row in rows:
        doc = _document(row.subject_key)
        row.invoice_id = found.get(doc) if doc else None


def _reached(session, rows: list[FailureRow], message_of: dict[int, int]) -> None:
    if not rows:
        return
    reached: dict[int, list[str]] = {}
    for message_id, channel in session.execute(
            sa.select(Delivery.message_id, Delivery.channel).where(
                among(session, Delivery.message_id, sorted(set(message_of.values()))),
                Delivery.state.in_(SENT_STATES))):
        reached.setdefault(message_id, []).append(channel.value)
    for row in rows:
        row.reached_by = sorted(reached.get(message_of[row.id], []))


@bp.route("/failures")
@staff_required
def failures() -> str:
    """Failed, in-doubt and dead-address deliveries, grouped by reason."""
    channel = request.args.get("channel") or None
    if channel and channel not in {c.value for c in ChannelName}:
        channel = None
    groups, total = load_failures(db_session(), channel=channel)
    # Grouping needs each error's text, so the page reads only the newest failures; when
    # there are more, it says how many in all (counted in SQL) so nothing looks hidden.
    everything = count_failures(db_session(), channel=channel) if total >= SHOWN else total
    return render_template("ops/failures/index.html", groups=groups, total=total,
                           capped=everything > total, shown=total, everything=everything,
                           per_group=PER_GROUP,
                           channel=channel, channels=CHANNELS, may_support=may_support(),
                           may_operate=may_operate(), retry_form=RetryForm(),
                           group_form=RetryGroupForm())


def _delivery_or_404(delivery_id: int) -> Delivery:
    delivery = db_session().get(Delivery, delivery_id)
    if delivery is None:
        abort(404)
    return delivery


def resend_channels(delivery: Delivery) -> list[tuple[str, str]]:
    """Channels the message may still be resent on: a working address, not used yet."""
    taken = {d.channel for d in delivery.message.deliveries}
    recipient = delivery.message.recipient
    choices = []
    for channel in ChannelName:
        if channel in taken:
            continue
        if channel is ChannelName.PORTAL or recipient.working_addresses(channel):
            choices.append((channel.value, str(CHANNELS[channel.value])))
    return choices


@bp.route("/deliveries/<int:delivery_id>")
@staff_required
def delivery_page(delivery_id: int) -> str:
    """One delivery's full timeline: its own events and its message's, oldest first."""
    session = db_session()
    delivery = _delivery_or_404(delivery_id)
    message = delivery.message
    sibling_ids = [str(d.id) for d in message.deliveries]
    events = list(session.scalars(sa.select(Event).where(sa.or_(
        sa.and_(Event.subject_type == "delivery", Event.subject_key.in_(sibling_ids)),
        sa.and_(Event.subject_type == "message", Event.subject_key == str(message.id)))
    ).order_by(Event.id)))
    own = [e for e in events if e.subject_type == "delivery" and e.subject_key == str(delivery.id)]
    doc = _document(message.subject_key)
    invoice = session.scalars(sa.select(Invoice).where(
        Invoice.organisation_id == doc[0], Invoice.number == doc[1])).first() if doc else None
    form = ResendForm()
    form.channel.choices = resend_channels(delivery)
    return render_template(
        "ops/failures/delivery.html", delivery=delivery, message=message, events=events,
        own_events=own, invoice=invoice,
        customer_id=_customer_id(message.recipient.recipient_key),
        reason=str(REASONS[reason_class(delivery.last_error, state=delivery.state.value,
                                        address_dead=bool(delivery.address and
                                                          delivery.address.dead_since))]),
        retryable=delivery.state in (DeliveryState.FAILED, DeliveryState.IN_DOUBT)
        and not (delivery.address and delivery.address.dead_since),
        may_support=may_support(), may_operate=may_operate(), retry_form=RetryForm(),
        resend_form=form)


def action_error_text(error: ActionError) -> str:
    """What went wrong, in the reader's language."""
    texts = {
        "reason_missing": _("give a reason"),
        "missing": _("it no longer exists"),
        "same_channel": _("choose another channel than the one that failed; to try the same "
                          "one again, retry it"),
        "channel_taken": _("this message already has delivery %(id)s on that channel; retry "
                           "that one instead", id=error.details.get("delivery_id")),
        "no_address": _("the customer has no working address on that channel"),
    }
    return texts.get(error.code, str(error))


def _after_retry(result, *, one: bool) -> None:
    if result.retried:
        flash(_("%(num)d deliveries go out again.", num=len(result.retried)) if not one
              else _("The delivery goes out again."), "info")
        for wave_id in result.new_waves:
            flash(_("Its wave was finished, so the retry went into a new wave (%(id)d) that "
                    "started at once.", id=wave_id), "info")
        for wave_id, state in result.waiting.items():
            flash(_("Wave %(id)d is %(state)s: the retry goes out when the wave runs.",
                    id=wave_id, state=state), "info")
    for delivery_id, why in list(result.skipped.items())[:10]:
        flash(_("Delivery %(id)d was not retried: %(why)s.", id=delivery_id,
                why=SKIPPED.get(why, why)), "error")


@bp.route("/deliveries/<int:delivery_id>/retry", methods=["POST"])
@staff_required
def retry_one(delivery_id: int) -> Response:
    """Retry one failed or in-doubt delivery (support agents, operators, admins)."""
    if not may_support():
        abort(403)
    _delivery_or_404(delivery_id)
    form = RetryForm()
    if not form.validate_on_submit():
        abort(400)
    note = (form.note.data or "").strip() or "retry of one delivery from the failures page"
    result = retry_deliveries(db_session(), [delivery_id], actor=actor(), reason=note)
    _after_retry(result, one=True)
    if request.form.get("back") == "list":
        return redirect(url_for("ops.failures"))
    return redirect(url_for("ops.delivery_page", delivery_id=delivery_id))


@bp.route("/failures/retry", methods=["POST"])
@staff_required
def retry_group() -> Response:
    """Retry every failed and in-doubt delivery of one reason group (operators, admins)."""
    if not may_operate():
        abort(403)
    form = RetryGroupForm()
    if not form.validate_on_submit() or form.reason_class.data not in REASONS:
        abort(400)
    channel = form.channel.data or None
    if channel and channel not in {c.value for c in ChannelName}:
        abort(400)
    groups, _total = load_failures(db_session(), channel=channel)
    group = next((g for g in groups if g.reason == form.reason_class.data), None)
    ids = [row.id for row in group.rows if row.retryable] if group else []
    if not ids:
        flash(_("Nothing in this group can be retried."), "error")
        return redirect(url_for("ops.failures", channel=channel))
    note = (form.note.data or "").strip() or f"retry of the group {form.reason_class.data}"
    result = retry_deliveries(db_session(), ids, actor=actor(), reason=note)
    _after_retry(result, one=False)
    return redirect(url_for("ops.failures", channel=channel))


@bp.route("/deliveries/<int:delivery_id>/resend", methods=["POST"])
@staff_required
def resend_elsewhere(delivery_id: int) -> Response | str:
    """Resend a delivery's message on another channel (operators, admins)."""
    if not may_operate():
        abort(403)
    delivery = _delivery_or_404(delivery_id)
    form = ResendForm()
    form.channel.choices = resend_channels(delivery)
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        for name, errors in form.errors.items():
            label = getattr(form, name).label.text if hasattr(form, name) else name
            flash(_("%(field)s: %(errors)s", field=label, errors=" ".join(errors)), "error")
        return redirect(url_for("ops.delivery_page", delivery_id=delivery_id))
    try:
        new = resend_on_channel(db_session(), delivery_id, ChannelName(form.channel.data),
                                actor=actor(), reason=form.reason.data.strip())
    except ActionError as error:
        flash(_("Not resent: %(why)s.", why=action_error_text(error)), "error")
        return redirect(url_for("ops.delivery_page", delivery_id=delivery_id))
    flash(_("A new delivery (%(id)d) on %(channel)s was added.", id=new.id,
            channel=CHANNELS[new.channel.value]), "info")
    return redirect(url_for("ops.delivery_page", delivery_id=new.id))
