"""The pay pages: open a link, see and download the invoice, pay it, or ask for a fresh link.

Access to an invoice here is either its owner's sign-in or a link: following a
valid link puts a grant for that one invoice in the (signed, HttpOnly) session
cookie and redirects to the stable address, so the token leaves the address bar
and is never sent on as a referrer. Every page re-checks the link, so revoking
or expiring it ends access at once. The grant opens nothing but this blueprint's
pages for that invoice.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from decimal import Decimal
from io import BytesIO

from babel.dates import format_date
from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask import session as cookie
from flask_babel import gettext as _
from flask_login import current_user

from distribution.documents import MEDIA_TYPES, DocumentFormat, make_store
from distribution.inbox import mark_viewed
from portal.db import db_session
from portal.i18n import FORMAT_LOCALES, supported
from portal.i18n import SESSION_KEY as LANGUAGE_KEY
from portal.invoices.queries import invoice_payments
from portal.issuing import invoice_key
from portal.models import Invoice, PayLink
from portal.pay import bp
from portal.pay.forms import PayForm, RecoveryForm
from portal.pay.links import (
    LinkState,
    check_token,
    invoice_for_public_id,
    link_state,
    public_id,
    record_opened,
)
from portal.pay.recovery import TooManyRequests, after_commit, client_digest, request_link
from portal.pay.tasks import EXTENSION_KEY as EMAIL_TASK
from portal.payment_providers import (
    Instructions,
    PaymentRequest,
    PaymentUnavailable,
    enabled_providers,
    stripe_provider,
)
from portal.payment_providers.bank_transfer import qr_svg, transfer_instructions
from portal.payment_providers.stripe_checkout import WebhookRejected, handle_event, verify_event
from portal.payments import open_balance
from portal.recipients_sync import recipient_key
from portal.rendering import render_invoice_pdf

log = logging.getLogger(__name__)

GRANTS = "pay_links"  # session key: {invoice id: link id}
MAX_GRANTS = 10
OWNER, LINK = "owner", "link"


def _settings():
    return current_app.config["HERALD"]


def _viewer(invoice: Invoice | None) -> str | None:
    """``owner`` (signed in as the invoice's customer), ``link`` (a valid grant), or None."""
    if invoice is None:
        return None
    if current_user.is_authenticated and current_user.customer_id == invoice.customer_id:
        return OWNER
    link_id = (cookie.get(GRANTS) or {}).get(str(invoice.id))
    if link_id is not None:
        link = db_session().get(PayLink, link_id)
        if link is not None and link.invoice_id == invoice.id \
                and link_state(link) == LinkState.VALID:
            return LINK
    return None


def _invoice_or_404(pid: str) -> tuple[Invoice, str]:
    invoice = invoice_for_public_id(db_session(), pid)
    viewer = _viewer(invoice)
    if viewer is None:
        abort(404)  # another customer's invoice, an ended link, or no such invoice: all alike
    return invoice, viewer


def _no_referrer(response: Response) -> Response:
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/t/<token>")
def open_link(token: str) -> Response | tuple[str, int]:
    """Follow a "review & pay" link: a valid one opens its invoice; an ended one explains."""
    session = db_session()
    result = check_token(session, token)
    if result.link is None:
        return _no_referrer(Response(render_template("pay/link_ended.html", state=result.state,
                                                     pid=None), 404))
    invoice = result.link.invoice
    if not result.valid:
        return _no_referrer(Response(render_template(
            "pay/link_ended.html", state=result.state, pid=public_id(invoice)), 410))
    record_opened(session, result.link, actor="portal:pay-link")
    grants = dict(cookie.get(GRANTS) or {})
    grants.pop(str(invoice.id), None)
    grants[str(invoice.id)] = result.link.id
    cookie[GRANTS] = dict(list(grants.items())[-MAX_GRANTS:])
    # The pages speak the customer's language unless this browser already chose one.
    language = supported(invoice.customer.language)
    if language and LANGUAGE_KEY not in cookie:
        cookie[LANGUAGE_KEY] = language
    return _no_referrer(redirect(url_for("pay.show", pid=public_id(invoice))))


@bp.route("/<pid>")
def show(pid: str) -> Response | str:
    """The invoice's stable address: the pay page for a link visitor, the invoice page for
    its owner, and the recovery page for everyone else."""
    session = db_session()
    invoice = invoice_for_public_id(session, pid)
    viewer = _viewer(invoice)
    if viewer == OWNER and not (request.args.get("checkout") or request.args.get("pay")):
        return redirect(url_for("invoices.show", number=invoice.number))
    if viewer is None:
        if current_user.is_authenticated and not current_user.is_staff:
            abort(404)  # a signed-in customer asking for someone else's invoice
        return _no_referrer(Response(render_template(
            "pay/recover.html", form=RecoveryForm(), pid=pid)))
    if viewer == LINK:
        key = recipient_key(invoice.customer_id)
        mark_viewed(session, key, [f"{invoice.kind.value}:{invoice_key(invoice)}"],
                    reminder_prefix=f"reminder:{invoice_key(invoice)}:", actor=key)
    balance = open_balance(session, invoice)
    providers = enabled_providers(_settings(), invoice) if balance > 0 else {}
    form = PayForm(balance=balance, choices=_choices(providers)) if providers else None
    return _no_referrer(Response(_render_show(invoice, balance, form, viewer)))


def _render_show(invoice: Invoice, balance: Decimal, form: PayForm | None, viewer: str) -> str:
    return render_template("pay/show.html", invoice=invoice, balance=balance, form=form,
                           viewer=viewer, pid=public_id(invoice),
                           payments=invoice_payments(db_session(), invoice.id),
                           checkout=request.args.get("checkout"))


def _choices(providers: dict) -> list[tuple[str, str]]:
    labels = {"stripe": _("Card or other online payment (Stripe)"),
              "bank_transfer": _("Bank transfer")}
    return [(name, labels.get(name, name)) for name in providers]


@bp.route("/<pid>/pdf")
def download_pdf(pid: str) -> Response:
    """The invoice's PDF, as sent."""
    invoice, _viewer_kind = _invoice_or_404(pid)
    if not invoice.ubl_sha256:
        abort(404)
    session = db_session()
    settings = _settings()
    store = make_store(settings.document_store, settings.instance_path)
    digest = render_invoice_pdf(session, invoice, store, public_url=settings.public_url,
                                actor="portal:pay-link")
    response = send_file(BytesIO(store.get(session, digest)),
                         mimetype=MEDIA_TYPES[DocumentFormat.PDF], as_attachment=True,
                         download_name=f"{_file_stem(invoice.number)}.pdf", etag=digest,
                         max_age=0)
    return _no_referrer(response)


@bp.route("/<pid>/pay", methods=["POST"])
def start(pid: str) -> Response | tuple[str, int]:
    """Start paying with the chosen provider: off to Stripe, or the transfer details."""
    invoice, viewer = _invoice_or_404(pid)
    session = db_session()
    balance = open_balance(session, invoice)
    providers = enabled_providers(_settings(), invoice) if balance > 0 else {}
    if not providers:
        flash(_("There is nothing left to pay on this invoice."), "info")
        return redirect(url_for("pay.show", pid=pid))
    form = PayForm(balance=balance, choices=_choices(providers))
    if not form.validate_on_submit():
        return _render_show(invoice, balance, form, viewer), 422
    if form.provider.data == "bank_transfer":
        return redirect(url_for("pay.bank", pid=pid, amount=f"{form.amount_value:.2f}"))
    back = url_for("pay.show", pid=pid, _external=False)
    base = _settings().public_url
    email = invoice.customer.primary_email
    try:
        result = providers[form.provider.data].start_payment(PaymentRequest(
            invoice=invoice, amount=form.amount_value,
            return_url=f"{base}{back}?checkout=done", cancel_url=f"{base}{back}?checkout=cancelled",
            customer_email=email))
    except PaymentUnavailable:
        flash(_("Card payment is not available right now. Try again in a few minutes, or pay "
                "by bank transfer."), "error")
        return redirect(url_for("pay.show", pid=pid))
    if isinstance(result, Instructions):  # a provider that answers with details
        return redirect(url_for("pay.bank", pid=pid, amount=f"{form.amount_value:.2f}"))
    return _no_referrer(redirect(result.url, code=303))


def _amount_arg(balance: Decimal) -> Decimal:
    try:
        amount = Decimal(request.args.get("amount") or balance)
    except ArithmeticError:
        return balance
    if not amount.is_finite() or not Decimal("0.01") <= amount <= balance:
        return balance
    return amount.quantize(Decimal("0.01"))


@bp.route("/<pid>/bank")
def bank(pid: str) -> Response | str:
    """Bank transfer details: account, amount, structured reference and EPC QR code."""
    invoice, viewer = _invoice_or_404(pid)
    balance = open_balance(db_session(), invoice)
    if balance <= 0 or not invoice.organisation.iban \
            or "bank_transfer" not in _settings().payment_providers:
        return redirect(url_for("pay.show", pid=pid))
    amount = _amount_arg(balance)
    details = transfer_instructions(invoice, amount)
    return _no_referrer(Response(render_template(
        "pay/bank.html", invoice=invoice, details=details, pid=pid, viewer=viewer,
        amount=amount)))


@bp.route("/<pid>/qr.svg")
def qr(pid: str) -> Response:
    """The EPC QR code for the transfer, as an SVG image."""
    invoice, _viewer_kind = _invoice_or_404(pid)
    balance = open_balance(db_session(), invoice)
    if balance <= 0:
        abort(404)
    details = transfer_instructions(invoice, _amount_arg(balance))
    if details.qr_payload is None:
        abort(404)
    response = Response(qr_svg(details.qr_payload), mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'none'"
    return _no_referrer(response)


@bp.route("/<pid>/recover", methods=["POST"])
def recover(pid: str) -> Response | tuple[Response, int]:
    """Ask for a fresh link; the answer is the same whether or not the address matched."""
    session = db_session()
    form = RecoveryForm()
    if not form.validate_on_submit():
        return _no_referrer(Response(render_template("pay/recover.html", form=form, pid=pid),
                                     422))
    settings = _settings()
    try:
        email = request_link(session, invoice_for_public_id(session, pid), form.email.data,
                             client=client_digest(request.remote_addr),
                             public_url=settings.public_url,
                             days=settings.pay_link_days_after_due,
                             format_expiry=_format_expiry)
    except TooManyRequests:
        return _no_referrer(Response(render_template(
            "pay/recover.html", form=form, pid=pid, too_many=True), 429))
    if email is not None:
        task = current_app.extensions[EMAIL_TASK]
        payload = {"link_id": email.link_id, "address": email.address,
                   "language": email.language, "subject": email.subject,
                   "text": email.text, "link": email.link}
        after_commit(session, lambda: task(payload))
    return _no_referrer(Response(render_template("pay/recover_sent.html", pid=pid)))


def _format_expiry(moment: datetime, language: str) -> str:
    return format_date(moment.date(), "long", locale=FORMAT_LOCALES.get(language, "en_GB"))


@bp.route("/webhooks/stripe", methods=["POST"])
def stripe_webhook() -> tuple[dict, int]:
    """Stripe's events, verified by their signature (no CSRF token: Stripe signs instead)."""
    settings = _settings()
    if stripe_provider(settings) is None or not settings.stripe_webhook_secret:
        return {"error": "Stripe is not configured here"}, 404
    try:
        event = verify_event(request.get_data(), request.headers.get("Stripe-Signature"),
                             settings.stripe_webhook_secret)
    except WebhookRejected as error:
        log.warning("Stripe webhook refused: %s", error)
        return {"error": str(error)}, 400
    outcome = handle_event(db_session(), event, public_url=settings.public_url,
                           link_days=settings.pay_link_days_after_due)
    log.info("Stripe event %s (%s): %s", outcome.event_id, outcome.event_type, outcome.outcome)
    return {"received": True, "outcome": outcome.outcome, "duplicate": outcome.duplicate}, 200


def _file_stem(number: str) -> str:
    # Invoice numbers may hold "/" or spaces; the file name must not.
    return re.sub(r"[^0-9A-Za-z._-]+", "_", number).strip("_") or "invoice"
