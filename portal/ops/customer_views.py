"""Customer lookup pages: search, the customer's file, resend a document, a new pay link.

Any staff member may search and read (auditors read-only); support agents,
billing operators and admins may resend and issue links. Another customer's
document, or an address that is not the customer's, is a 404 or a refusal,
never a send.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from distribution.channels.base import ChannelName
from distribution.operator_actions import ActionError
from portal.db import db_session
from portal.models import Customer, Invoice
from portal.ops import bp
from portal.ops.access import actor, staff_required
from portal.ops.customer_lookup import (
    LookupError_,
    customer_file,
    find_customers,
    link_email_targets,
    new_pay_link,
    resend_document,
    resend_targets,
    sendable_documents,
)
from portal.ops.failures import action_error_text, may_support
from portal.ops.labels import CHANNELS
from portal.pay.recovery import after_commit
from portal.pay.tasks import EXTENSION_KEY as LINK_EMAIL_TASK
from portal.queue import get_tasks

MATCHED_BY = {"customer": _l("customer number"), "account": _l("account number"),
              "invoice": _l("invoice number"), "email": _l("email address"),
              "phone": _l("phone number")}


class ResendDocumentForm(FlaskForm):
    """Send a document again, now, to one verified address, with the reason why."""

    invoice = SelectField(_l("Document"), validators=[DataRequired()], choices=[])
    target = SelectField(_l("Send to"), validators=[DataRequired()], choices=[])
    reason = StringField(_l("Reason (kept in the log)"),
                         validators=[DataRequired(), Length(max=300)])


class PayLinkForm(FlaskForm):
    """Issue a new "review & pay" link: shown once here, or emailed to a verified address."""

    invoice = SelectField(_l("Document"), validators=[DataRequired()], choices=[])
    target = SelectField(_l("Give it"), validators=[DataRequired()], choices=[])


def _address_label(address) -> str:
    channel = str(CHANNELS[address.channel.value])
    if address.channel in (ChannelName.EMAIL, ChannelName.PEPPOL):
        return f"{channel}: {address.value}"
    return f"{channel}: {address.label or _('device %(id)d', id=address.id)}"


def _forms(file) -> tuple[ResendDocumentForm, PayLinkForm]:
    documents = [(str(i.id), f"{i.number} ({i.issue_date.isoformat()})")
                 for i in sendable_documents(file.invoices)]
    resend = ResendDocumentForm()
    resend.invoice.choices = documents
    resend.target.choices = [(str(a.id), _address_label(a))
                             for a in resend_targets(file.addresses)] + [
        (ChannelName.PORTAL.value, str(CHANNELS["portal"]))]
    link = PayLinkForm()
    link.invoice.choices = [(str(i.id), f"{i.number} ({i.issue_date.isoformat()})")
                            for i in file.invoices if i.ubl_sha256]
    link.target.choices = [("show", _("Show it to me once, to read out"))] + [
        (str(a.id), _("Email it to %(address)s", address=a.value))
        for a in link_email_targets(file.addresses)]
    return resend, link


@bp.route("/customers")
@staff_required
def customers() -> str | Response:
    """Find a customer by email, phone, customer, account or invoice number."""
    query = (request.args.get("q") or "").strip()[:254]
    # No stored value holds a NUL, and PostgreSQL refuses one in a query: nothing matches.
    matches = find_customers(db_session(), query) if query and "\x00" not in query else []
    if len(matches) == 1:
        return redirect(url_for("ops.customer_page", customer_id=matches[0].customer.id))
    return render_template("ops/customers/index.html", query=query, matches=matches,
                           matched_by=MATCHED_BY)


def _customer_or_404(customer_id: int) -> Customer:
    customer = db_session().get(Customer, customer_id)
    if customer is None:
        abort(404)
    return customer


def _render(customer: Customer, *, new_link=None, status: int = 200,
            resend_form=None, link_form=None):
    file = customer_file(db_session(), customer)
    resend, link = _forms(file)
    return render_template("ops/customers/show.html", file=file, customer=customer,
                           resend_form=resend_form or resend, link_form=link_form or link,
                           may_support=may_support(), new_link=new_link), status


@bp.route("/customers/<int:customer_id>")
@staff_required
def customer_page(customer_id: int):
    """Everything about one customer, and the support actions."""
    return _render(_customer_or_404(customer_id))


def _settings():
    return current_app.config["HERALD"]


def _invoice_of(customer: Customer, value: str | None) -> Invoice:
    invoice = db_session().get(Invoice, int(value)) if value and value.isdigit() else None
    if invoice is None or invoice.customer_id != customer.id:
        abort(404)  # another customer's document is never sent from here
    return invoice


@bp.route("/customers/<int:customer_id>/resend", methods=["POST"])
@staff_required
def resend(customer_id: int):
    """Resend a document now to a verified address, with a reason (logged)."""
    if not may_support():
        abort(403)
    customer = _customer_or_404(customer_id)
    file = customer_file(db_session(), customer)
    form, _link = _forms(file)
    if not form.validate_on_submit():
        return _render(customer, status=422, resend_form=form)
    invoice = _invoice_of(customer, form.invoice.data)
    settings = _settings()
    session = db_session()
    try:
        delivery = resend_document(session, customer, invoice, form.target.data,
                                   reason=form.reason.data.strip(), actor=actor(),
                                   public_url=settings.public_url,
                                   link_days=settings.pay_link_days_after_due)
    except LookupError_ as error:
        form.target.errors = [*form.target.errors, str(error)]
        return _render(customer, status=422, resend_form=form)
    except ActionError as error:
        form.target.errors = [*form.target.errors, action_error_text(error)]
        return _render(customer, status=422, resend_form=form)
    send = get_tasks().send
    delivery_id = delivery.id
    after_commit(session, lambda: send(delivery_id))
    flash(_("%(number)s is on its way (delivery %(id)d).", number=invoice.number,
            id=delivery_id), "info")
    return redirect(url_for("ops.customer_page", customer_id=customer.id))


@bp.route("/customers/<int:customer_id>/pay-link", methods=["POST"])
@staff_required
def pay_link(customer_id: int):
    """Issue a new "review & pay" link (earlier ones stop working): shown once, or emailed."""
    if not may_support():
        abort(403)
    customer = _customer_or_404(customer_id)
    file = customer_file(db_session(), customer)
    _resend, form = _forms(file)
    if not form.validate_on_submit():
        return _render(customer, status=422, link_form=form)
    invoice = _invoice_of(customer, form.invoice.data)
    settings = _settings()
    session = db_session()
    try:
        issued = new_pay_link(session, customer, invoice, form.target.data, actor=actor(),
                              public_url=settings.public_url,
                              link_days=settings.pay_link_days_after_due)
    except LookupError_ as error:
        form.target.errors = [*form.target.errors, str(error)]
        return _render(customer, status=422, link_form=form)
    if issued.email is not None:
        email = issued.email
        task = current_app.extensions[LINK_EMAIL_TASK]
        payload = {"link_id": email.link_id, "address": email.address,
                   "language": email.language, "subject": email.subject, "text": email.text,
                   "link": email.link}
        after_commit(session, lambda: task(payload))
        flash(_("A new link to %(number)s was emailed to %(address)s; earlier links no longer "
                "work.", number=invoice.number, address=email.address), "info")
        return redirect(url_for("ops.customer_page", customer_id=customer.id))
    # Shown once: the page is not stored (no-store) and the token is kept nowhere.
    return _render(customer, new_link={"url": issued.url, "expires_at": issued.expires_at,
                                       "number": invoice.number})
