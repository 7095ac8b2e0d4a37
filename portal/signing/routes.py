"""The signer's page (opened from the emailed link, or from the portal) and the customer's list.

A link token opens only its own request and only for its own signer; a
signed-in customer sees their customer's requests and nobody else's (404).
"""

from __future__ import annotations

import re
from io import BytesIO

import sqlalchemy as sa
from flask import Response, abort, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.orm import selectinload

from portal.db import db_session
from portal.models import RequestStatus, SignatureRequest, Signer
from portal.signing import bp
from portal.signing.actions import (
    Visit,
    closed_reason,
    decline,
    record_view,
    sign,
    signer_for_token,
)
from portal.signing.context import SigningContext
from portal.signing.forms import DeclineForm, SignForm
from portal.signing.requests import SigningError
from portal.signing.titles import document_title

DECLINE_PREFIX = "decline"


@bp.after_request
def private_pages(response: Response) -> Response:
    """Signing pages carry a secret link: never cached, never sent on as a referrer."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _visit() -> Visit:
    user_id = current_user.id if current_user.is_authenticated else None
    return Visit(ip_address=request.remote_addr or "unknown",
                 user_agent=request.user_agent.string[:500] or "unknown", user_id=user_id)


def _token_signer(token: str) -> Signer:
    signer = signer_for_token(db_session(), token)
    if signer is None:
        abort(404)
    return signer


# -- by link --------------------------------------------------------------------------

@bp.route("/sign/<token>", methods=["GET", "POST"])
def by_link(token: str):
    """The signer's page from the emailed link: read, consent, sign or decline."""
    signer = _token_signer(token)
    return _signing_page(signer, urls={
        "sign": url_for("signing.by_link", token=token),
        "decline": url_for("signing.decline_by_link", token=token),
        "document": url_for("signing.document_by_link", token=token)})


@bp.route("/sign/<token>/decline", methods=["POST"])
def decline_by_link(token: str):
    """Decline from the emailed link, with a reason."""
    signer = _token_signer(token)
    return _decline(signer, after=url_for("signing.by_link", token=token), urls={
        "sign": url_for("signing.by_link", token=token),
        "decline": url_for("signing.decline_by_link", token=token),
        "document": url_for("signing.document_by_link", token=token)})


@bp.route("/sign/<token>/document.pdf")
def document_by_link(token: str) -> Response:
    """The document to sign, while the link is open."""
    signer = _token_signer(token)
    if closed_reason(signer) is not None:
        abort(404)
    return _pdf(signer.request.document_sha256, signer.request.title)


# -- in the portal --------------------------------------------------------------------

def _customer_id() -> int:
    if current_user.customer_id is None:
        abort(403)  # staff see requests in the ops console, not here
    return current_user.customer_id


def _own_request(request_id: int) -> SignatureRequest:
    found = db_session().scalars(
        sa.select(SignatureRequest)
        .where(SignatureRequest.id == request_id,
               SignatureRequest.customer_id == _customer_id())
        .options(selectinload(SignatureRequest.signers))).first()
    if found is None:
        abort(404)
    return found


def _my_turn(signature_request: SignatureRequest) -> Signer | None:
    """The current signer when it is the signed-in user (same email address)."""
    signer = signature_request.current_signer
    if signer is not None and signer.email.lower() == current_user.email.lower():
        return signer
    return None


@bp.route("/signatures")
@login_required
def index() -> str:
    """The customer's signature requests, newest first."""
    requests = db_session().scalars(
        sa.select(SignatureRequest).where(SignatureRequest.customer_id == _customer_id())
        .options(selectinload(SignatureRequest.signers))
        .order_by(SignatureRequest.created_at.desc(), SignatureRequest.id.desc())).all()
    return render_template("signing/index.html", requests=requests,
                           my_turn={r.id for r in requests if _my_turn(r)})


def _portal_urls(request_id: int) -> dict[str, str]:
    return {"sign": url_for("signing.show", request_id=request_id),
            "decline": url_for("signing.decline_in_portal", request_id=request_id),
            "document": url_for("signing.document", request_id=request_id)}


@bp.route("/signatures/<int:request_id>", methods=["GET", "POST"])
@login_required
def show(request_id: int):
    """One request: its signers and documents; the sign form when it is this user's turn."""
    signature_request = _own_request(request_id)
    signer = _my_turn(signature_request)
    if signer is not None:
        return _signing_page(signer, urls=_portal_urls(request_id))
    if request.method == "POST":
        abort(404)  # not this user's turn: nothing here to sign
    return render_template("signing/show.html", signature_request=signature_request)


@bp.route("/signatures/<int:request_id>/decline", methods=["POST"])
@login_required
def decline_in_portal(request_id: int):
    """Decline from the portal, with a reason."""
    signer = _my_turn(_own_request(request_id))
    if signer is None:
        abort(404)
    return _decline(signer, after=url_for("signing.show", request_id=request_id),
                    urls=_portal_urls(request_id))


@bp.route("/signatures/<int:request_id>/document.pdf")
@login_required
def document(request_id: int) -> Response:
    """The document as it was sent for signing."""
    signature_request = _own_request(request_id)
    return _pdf(signature_request.document_sha256, signature_request.title)


@bp.route("/signatures/<int:request_id>/signed.pdf")
@login_required
def signed_document(request_id: int) -> Response:
    """The signed document with its certificate page, once everyone signed."""
    signature_request = _own_request(request_id)
    if not signature_request.signed_sha256:
        abort(404)
    return _pdf(signature_request.signed_sha256, signature_request.title + " signed")


# -- shared ---------------------------------------------------------------------------

def _signing_page(signer: Signer, *, urls: dict[str, str]):
    session = db_session()
    reason = closed_reason(signer)
    if reason is not None:
        return _closed(signer, reason)
    form = SignForm()
    decline_form = DeclineForm(prefix=DECLINE_PREFIX, formdata=None)
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                sign(session, signer, _visit(), typed_name=form.typed_name.data,
                     drawn_png=form.drawn_png, context=SigningContext.from_app())
            except SigningError:
                # Answered meanwhile (a second tab, a double submit): nothing was written.
                return render_template("signing/closed.html", signer=signer,
                                       reason="closed"), 409
            return redirect(urls["sign"], 303)
        status = 422
    else:
        record_view(session, signer, _visit())
    return render_template("signing/sign.html", signer=signer, req=signer.request, form=form,
                           decline_form=decline_form, urls=urls), status


def _decline(signer: Signer, *, after: str, urls: dict[str, str]):
    reason = closed_reason(signer)
    if reason is not None:
        return _closed(signer, reason)
    decline_form = DeclineForm(prefix=DECLINE_PREFIX)
    if decline_form.validate_on_submit():
        try:
            decline(db_session(), signer, _visit(), reason=decline_form.reason.data)
        except SigningError:
            return render_template("signing/closed.html", signer=signer, reason="closed"), 409
        return redirect(after, 303)
    return render_template("signing/sign.html", signer=signer, req=signer.request,
                           form=SignForm(formdata=None), decline_form=decline_form,
                           urls=urls, show_decline=True), 422


def _closed(signer: Signer, reason: str):
    # The signer's own answer is shown as a plain page; an expired or closed link is gone.
    status = 200 if reason in ("signed", "declined") else 410
    return render_template("signing/closed.html", signer=signer, reason=reason), status


def _pdf(sha256: str, title: str) -> Response:
    context = SigningContext.from_app()
    data = context.store.get(db_session(), sha256)
    name = re.sub(r"[^0-9A-Za-z._-]+", "_", title).strip("_") or "document"
    response = send_file(BytesIO(data), mimetype="application/pdf", as_attachment=False,
                         download_name=f"{name}.pdf", etag=sha256, max_age=0)
    response.headers["Content-Disposition"] = f'inline; filename="{name}.pdf"'
    return response


def status_label(value: str) -> str:
    """A request or signer status in the reader's language."""
    return {
        "pending": _("Waiting for signatures"), "completed": _("Signed by everyone"),
        "declined": _("Declined"), "expired": _("Expired"), "waiting": _("Not asked yet"),
        "asked": _("Asked to sign"), "signed": _("Signed"), "skipped": _("Not asked"),
    }.get(value, value)


@bp.app_template_filter("signing_status")
def signing_status_filter(value) -> str:
    """Template filter: ``{{ request.status|signing_status }}``."""
    return status_label(getattr(value, "value", value))


@bp.app_template_filter("document_title")
def document_title_filter(signature_request: SignatureRequest) -> str:
    """Template filter: ``{{ req|document_title }}``."""
    return document_title(signature_request)


@bp.app_context_processor
def signing_helpers() -> dict[str, object]:
    """``signature_requests_for(invoice)``: its open requests, for the invoice page's link."""

    def signature_requests_for(invoice) -> list[SignatureRequest]:
        # The invoice page has already checked that the invoice is the reader's own.
        return list(db_session().scalars(
            sa.select(SignatureRequest)
            .where(SignatureRequest.invoice_id == invoice.id,
                   SignatureRequest.customer_id == invoice.customer_id,
                   SignatureRequest.status == RequestStatus.PENDING)
            .order_by(SignatureRequest.id)))

    return {"signature_requests_for": signature_requests_for}
