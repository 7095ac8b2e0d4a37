"""Routes of "How we reach you": channels, email addresses, devices and the Peppol ID.

Every object is looked up through the signed-in customer's own recipient, so
another customer's address id is a 404. Forms post back and redirect; the
push subscription routes speak JSON and take the CSRF token as a header.
"""

from __future__ import annotations

from typing import Any

from flask import (
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from distribution.channels.base import ChannelName
from distribution.recipients import Address, Recipient
from portal import labels
from portal.channels import vapid_keys, vapid_subject
from portal.db import db_session
from portal.mailer import after_commit
from portal.models import Customer, CustomerEmailAddress
from portal.preferences import bp, emails, push
from portal.preferences.einvoice import current_peppol_address, set_embed_pdf, set_peppol_id
from portal.preferences.forms import (
    CHANNEL_SHORT_NAMES,
    AddEmailForm,
    ChannelsForm,
    ConfirmForm,
    EmbedPdfForm,
    PeppolForm,
)
from portal.preferences.peppol_ids import PeppolIdError, parse_peppol_id
from portal.preferences.service import (
    CUSTOM,
    MESSAGE_TYPE_CODES,
    OFF,
    ChannelSetting,
    current_settings,
    customer_recipient,
    explain,
    message_types,
    preference_rows,
    save_settings,
)
from portal.preferences.user_agents import device_label
from portal.preferences.verification_mail import verification_task

REMOVABLE_CHANNELS = (ChannelName.EMAIL, ChannelName.WEB_PUSH, ChannelName.FCM)
ALL_TYPES = "*"


def _actor() -> str:
    return f"portal:user:{current_user.id}"


def _customer() -> Customer:
    # Staff have no channels of their own; they see customers in the ops console.
    if current_user.customer_id is None:
        abort(403)
    customer = db_session().get(Customer, current_user.customer_id)
    if customer is None:
        abort(404)
    return customer


def _recipient(customer: Customer) -> Recipient:
    return customer_recipient(db_session(), customer, actor=_actor())


def _back(anchor: str) -> Response:
    return redirect(url_for("preferences.index") + f"#{anchor}")


@bp.route("/preferences")
@login_required
def index() -> str:
    """The page: channels per message type, email addresses, devices, Peppol ID."""
    return _page()


def _page(status: int = 200, *, channels_form: ChannelsForm | None = None,
          email_form: AddEmailForm | None = None,
          peppol_form: PeppolForm | None = None) -> Any:
    session = db_session()
    customer = _customer()
    recipient = _recipient(customer)
    settings = current_settings(session, recipient)
    kinds = message_types(session)
    rows = preference_rows(session, recipient)
    names = {channel: str(name) for channel, name in CHANNEL_SHORT_NAMES.items()}
    effects = {kind.code: explain(kind, rows, recipient.addresses, names) for kind in kinds}
    if channels_form is None:
        channels_form = ChannelsForm(formdata=None, data=_form_data(settings))
    peppol = current_peppol_address(recipient)
    return render_template(
        "preferences/index.html",
        kinds=kinds, labels=labels.MESSAGE_TYPES, effects=effects, form=channels_form,
        emails=emails.listed_emails(session, customer, recipient),
        email_form=email_form or AddEmailForm(formdata=None),
        web_push=recipient.working_addresses(ChannelName.WEB_PUSH),
        app_devices=recipient.working_addresses(ChannelName.FCM),
        peppol=peppol.value if peppol else None,
        peppol_form=peppol_form or PeppolForm(formdata=None),
        embed_pdf_form=EmbedPdfForm(formdata=None, embed_pdf=customer.embed_pdf_in_ubl),
        button=ConfirmForm(formdata=None),
        push_available=vapid_subject(current_app.config["HERALD"]) is not None,
    ), status


def _form_data(settings: dict[str, ChannelSetting]) -> dict[str, Any]:
    def fields(setting: ChannelSetting) -> dict[str, Any]:
        channels = [c.value for c in setting.channels] + ["", "", ""]
        return {"mode": setting.mode, "first": channels[0] or ChannelName.EMAIL.value,
                "second": channels[1], "third": channels[2],
                "pdf": "pdf" in setting.attachments, "ubl": "ubl" in setting.attachments}

    data = {code: fields(settings[code]) for code in MESSAGE_TYPE_CODES}
    data["general"] = fields(settings[ALL_TYPES])
    return data


@bp.post("/preferences/channels")
@login_required
def save_channels() -> Any:
    """Save the general choice and every message type's; each change is an event."""
    session = db_session()
    form = ChannelsForm()
    kinds = {k.code: k for k in message_types(session)}
    valid = form.validate()
    new: dict[str, ChannelSetting] = {}
    if valid:
        general = form.general.form
        new[ALL_TYPES] = ChannelSetting(CUSTOM, tuple(general.channels()),
                                        tuple(general.attachments()))
        for code in MESSAGE_TYPE_CODES:
            sub = getattr(form, code).form
            mode = sub.mode.data
            if mode == OFF and kinds[code].mandatory:
                sub.mode.errors = [_("%(type)s messages are required and cannot be switched "
                                     "off; choose how they reach you instead.",
                                     type=labels.MESSAGE_TYPES[code])]
                valid = False
            elif mode == CUSTOM and not sub.channels():
                sub.first.errors = [_("Choose at least one channel, or pick "
                                      "“As my general choice”.")]
                valid = False
            new[code] = ChannelSetting(mode, tuple(sub.channels()) if mode == CUSTOM else (),
                                       tuple(sub.attachments()) if mode == CUSTOM
                                       else new[ALL_TYPES].attachments)
    if not valid:
        flash(_("Nothing was saved: please correct the marked choices."), "error")
        return _page(422, channels_form=form)
    recipient = _recipient(_customer())
    changed = save_settings(session, recipient, new, actor=_actor())
    flash(_("Saved. Each message type below says how it will reach you.") if changed
          else _("Nothing changed."), "info")
    return _back("channels")


# -- email addresses ---------------------------------------------------------------------

@bp.post("/preferences/emails")
@login_required
def add_email() -> Any:
    """Add an address; it is used once its owner follows the emailed link."""
    session = db_session()
    form = AddEmailForm()
    if not form.validate():
        return _page(422, email_form=form)
    customer = _customer()
    try:
        row = emails.add_email(session, customer, _recipient(customer), form.email.data,
                               actor=_actor())
    except emails.EmailAddressError as exc:
        form.email.errors = [{
            "already verified": _("This address is already in use for your messages."),
            "already pending": _("We already sent a link to this address; open it, or "
                                 "press “Send the link again” below."),
            "too many today": _("You added many addresses today; please try again "
                                "tomorrow."),
        }.get(str(exc), _("You have several addresses waiting for confirmation; confirm or "
                          "remove one of them first."))]
        return _page(422, email_form=form)
    _queue_verification(row.id)
    flash(_("We sent a link to %(email)s. Open it to start using the address.",
            email=row.email), "info")
    return _back("emails")


def _queue_verification(pending_id: int) -> None:
    task = verification_task()
    after_commit(db_session(), lambda: task(pending_id))


def _own_pending(pending_id: int) -> CustomerEmailAddress:
    row = db_session().get(CustomerEmailAddress, pending_id)
    if row is None or row.customer_id != _customer().id or not row.pending:
        abort(404)
    return row


@bp.post("/preferences/emails/pending/<int:pending_id>/resend")
@login_required
def resend_link(pending_id: int) -> Response:
    """Send the verification link again (at most every two minutes)."""
    row = _own_pending(pending_id)
    if not emails.may_resend(row):
        flash(_("We sent a link a moment ago; give it a few minutes to arrive."), "info")
    else:
        _queue_verification(row.id)
        flash(_("We sent a new link to %(email)s.", email=row.email), "info")
    return _back("emails")


@bp.post("/preferences/emails/pending/<int:pending_id>/remove")
@login_required
def withdraw_email(pending_id: int) -> Response:
    """Withdraw an address that was never confirmed."""
    row = _own_pending(pending_id)
    emails.remove_pending(db_session(), row, actor=_actor())
    flash(_("%(email)s was removed.", email=row.email), "info")
    return _back("emails")


@bp.route("/preferences/emails/verify/<token>", methods=["GET", "POST"])
def verify_email(token: str) -> Any:
    """Confirm an address from the emailed link: a page with a button, then the change.

    The button keeps mail scanners, which open links, from confirming on their own;
    no sign-in is needed because the link itself proves the mailbox is reachable.
    """
    session = db_session()
    row = emails.pending_by_token(session, token)
    form = ConfirmForm()
    if row is None:
        return render_template("preferences/verify.html", row=None, form=form), 404
    if request.method == "POST":  # CSRFProtect has checked the token
        customer = session.get(Customer, row.customer_id)
        emails.verify(session, row, customer_recipient(session, customer, actor="portal:link"),
                      actor=f"portal:email-link:{row.id}")
        flash(_("%(email)s is confirmed; we will use it for your messages.", email=row.email),
              "info")
        if current_user.is_authenticated and current_user.customer_id == customer.id:
            return _back("emails")
        return render_template("preferences/verify.html", row=row, form=form, done=True)
    return render_template("preferences/verify.html", row=row, form=form)


# -- devices (web push subscriptions and app tokens) and verified emails ------------------

def _own_address(address_id: int, channels: tuple[ChannelName, ...]) -> Address:
    address = db_session().get(Address, address_id)
    recipient = _recipient(_customer())
    if address is None or address.recipient_id != recipient.id \
            or address.channel not in channels or address.dead_since is not None:
        abort(404)
    return address


@bp.post("/preferences/addresses/<int:address_id>/remove")
@login_required
def remove_address(address_id: int) -> Response:
    """Stop using an email address, a browser or an app device."""
    address = _own_address(address_id, REMOVABLE_CHANNELS)
    session = db_session()
    if address.channel is ChannelName.EMAIL:
        emails.remove_verified(session, _customer(), address, actor=_actor())
        flash(_("%(email)s was removed.", email=address.value), "info")
        return _back("emails")
    push.remove(session, address, actor=_actor())
    flash(_("That device will get no more notifications."), "info")
    return _back("apps" if address.channel is ChannelName.FCM else "push")


@bp.post("/preferences/addresses/<int:address_id>/test")
@login_required
def test_notification(address_id: int) -> Response:
    """Send a test notification to one browser, now."""
    address = _own_address(address_id, (ChannelName.WEB_PUSH,))
    problem = push.send_test(db_session(), current_app.config["HERALD"], address,
                             link=current_app.config["HERALD"].public_url
                             + url_for("preferences.index"),
                             language=str(get_locale() or "en"), actor=_actor())
    if problem:
        flash(problem, "error")
    else:
        flash(_("Sent. The notification should appear within a few seconds."), "info")
    return _back("push")


@bp.get("/preferences/push/key")
@login_required
def push_key() -> Response:
    """The VAPID public key browsers subscribe with (``applicationServerKey``)."""
    settings = current_app.config["HERALD"]
    if vapid_subject(settings) is None:
        return jsonify(enabled=False, publicKey=None)
    return jsonify(enabled=True, publicKey=vapid_keys(settings).public_key_b64url)


@bp.post("/preferences/push/subscriptions")
@login_required
def subscribe() -> Any:
    """Store this browser's push subscription (JSON body, CSRF token in ``X-CSRFToken``)."""
    settings = current_app.config["HERALD"]
    customer = _customer()  # staff have no channels: 403 before anything else
    if vapid_subject(settings) is None:
        return jsonify(error=_("Notifications are not set up on this site yet.")), 409
    try:
        subscription = push.check_subscription(request.get_json(silent=True),
                                               allow_http=settings.web_push_allow_http)
    except push.SubscriptionError as exc:
        return jsonify(error=str(exc)), 400
    address = push.subscribe(db_session(), _recipient(customer), subscription,
                             device_label(request.user_agent.string), actor=_actor())
    return jsonify(id=address.id, label=address.label), 201


@bp.post("/preferences/push/unsubscribe")
@login_required
def unsubscribe() -> Any:
    """Forget this browser's subscription, found by its endpoint (JSON ``{"endpoint"}``)."""
    data = request.get_json(silent=True) or {}
    endpoint = data.get("endpoint") if isinstance(data, dict) else None
    address = push.find_by_endpoint(_recipient(_customer()), endpoint) \
        if isinstance(endpoint, str) else None
    if address is None:
        return jsonify(error=_("This browser has no notifications switched on.")), 404
    push.remove(db_session(), address, actor=_actor())
    return jsonify(removed=address.id)


# -- e-invoice -----------------------------------------------------------------------------

@bp.post("/preferences/peppol")
@login_required
def save_peppol() -> Any:
    """Use the customer's Peppol participant ID for e-invoices, once it checks out."""
    form = PeppolForm()
    if not form.validate():
        return _page(422, peppol_form=form)
    try:
        peppol_id = parse_peppol_id(form.peppol_id.data)
    except PeppolIdError as exc:
        form.peppol_id.errors = [str(exc)]
        return _page(422, peppol_form=form)
    customer = _customer()
    if set_peppol_id(db_session(), customer, _recipient(customer), peppol_id, actor=_actor()):
        flash(_("E-invoices will go to Peppol ID %(id)s. Choose “e-invoice via Peppol” "
                "above for the messages that should use it.", id=str(peppol_id)), "info")
    else:
        flash(_("That Peppol ID is already the one we use."), "info")
    return _back("einvoice")


@bp.post("/preferences/peppol/remove")
@login_required
def remove_peppol() -> Response:
    """Stop sending e-invoices by Peppol."""
    customer = _customer()
    set_peppol_id(db_session(), customer, _recipient(customer), None, actor=_actor())
    flash(_("We no longer send e-invoices by Peppol."), "info")
    return _back("einvoice")


@bp.post("/preferences/einvoice/pdf")
@login_required
def save_embed_pdf() -> Any:
    """Choose whether the e-invoice file sent to the signed-in customer carries its PDF."""
    form = EmbedPdfForm()
    if not form.validate():
        return _page(422)
    customer = _customer()
    wanted = bool(form.embed_pdf.data)
    if set_embed_pdf(db_session(), customer, _recipient(customer), wanted, actor=_actor()):
        flash(_("From now on, the e-invoice file we send you carries the PDF inside.")
              if wanted else
              _("From now on, the e-invoice file we send you no longer carries the PDF."),
              "info")
    else:
        flash(_("Nothing changed."), "info")
    return _back("einvoice")
