"""The customer's invoice list and invoice page."""

from __future__ import annotations

import re
from io import BytesIO

from flask import (
    Response,
    abort,
    current_app,
    make_response,
    render_template,
    request,
    send_file,
)
from flask_login import current_user, login_required

from distribution.documents import MEDIA_TYPES, DocumentFormat, make_store
from distribution.inbox import inbox, mark_listed, mark_viewed
from einvoice.calc import vat_breakdown
from portal.db import db_session
from portal.extensions import htmx
from portal.i18n import current_format_locale
from portal.invoice_documents import document_from_invoice
from portal.invoices import bp
from portal.invoices.filters import InvoiceFilters
from portal.invoices.queries import (
    corrected_invoice,
    crediting_notes,
    customer_invoice,
    customer_invoice_list,
    has_active_dispute,
    invoice_disputes,
    invoice_open_balance,
    invoice_payments,
)
from portal.invoices.timeline import invoice_timeline
from portal.issuing import invoice_key
from portal.models import DocumentKind, InvoiceStatus
from portal.recipients_sync import recipient_key
from portal.rendering import render_invoice_pdf


def _customer_id() -> int:
    # Staff have no invoices of their own; they look customers up in the ops console.
    if current_user.customer_id is None:
        abort(403)
    return current_user.customer_id


@bp.route("")
@login_required
def index() -> Response:
    """The customer's invoices and credit notes, paged; htmx swaps just the table."""
    filters = InvoiceFilters.from_args(request.args)
    session = db_session()
    customer_id = _customer_id()
    table_only = bool(htmx) and not htmx.history_restore_request  # a restore needs it all
    result, totals = customer_invoice_list(session, customer_id, filters,
                                           with_totals=not table_only)
    context = {"result": result, "filters": filters, "statuses": list(InvoiceStatus),
               "kinds": list(DocumentKind)}
    if table_only:
        return _vary(render_template("invoices/_table.html", **context))
    key = recipient_key(customer_id)
    notifications = inbox(session, key, limit=5)
    mark_listed(session, notifications, actor=key)  # shown here: delivered to the inbox
    return _vary(render_template("invoices/index.html", **context,
                                 totals=totals,
                                 notifications=[n for n in notifications if n.unread]))


def _vary(body: str) -> Response:
    # The same URL answers with the page or the table alone: caches must keep both apart.
    response = make_response(body)
    response.vary.add("HX-Request")
    return response


@bp.route("/<path:number>")
@login_required
def show(number: str) -> str:
    """One invoice: lines, VAT, totals, payments, credit notes, disputes and its timeline.

    Another customer's number is a 404.
    """
    session = db_session()
    invoice = customer_invoice(session, _customer_id(), number)
    if invoice is None:
        abort(404)
    key = invoice_key(invoice)
    customer_key = recipient_key(invoice.customer_id)
    mark_viewed(session, customer_key,
                [f"{invoice.kind.value}:{key}"], reminder_prefix=f"reminder:{key}:",
                actor=customer_key)
    disputes = invoice_disputes(session, invoice)
    payments = invoice_payments(session, invoice.id)
    credit_notes = crediting_notes(session, invoice)
    return render_template(
        "invoices/show.html", invoice=invoice, payments=payments,
        vat_breakdown=vat_breakdown(document_from_invoice(invoice)),
        open_balance=invoice_open_balance(invoice, payments, credit_notes),
        credit_notes=credit_notes,
        corrected=corrected_invoice(session, invoice),
        disputes=disputes, can_dispute=_can_dispute(invoice, disputes),
        timeline=invoice_timeline(session, invoice, locale=current_format_locale(),
                                  time_zone=invoice.customer.time_zone))


def _can_dispute(invoice, disputes) -> bool:
    return (not invoice.is_credit_note and not has_active_dispute(disputes)
            and invoice.status in (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID,
                                   InvoiceStatus.PAID, InvoiceStatus.DISPUTED))


@bp.route("/<path:number>/pdf")
@login_required
def download_pdf(number: str) -> Response:
    """The invoice's PDF as it was sent; rendered and stored now if the worker has not yet."""
    return _download(number, DocumentFormat.PDF)


@bp.route("/<path:number>/ubl")
@login_required
def download_ubl(number: str) -> Response:
    """The invoice's UBL XML, byte for byte as it was issued."""
    return _download(number, DocumentFormat.UBL)


def _download(number: str, fmt: DocumentFormat) -> Response:
    session = db_session()
    invoice = customer_invoice(session, _customer_id(), number)
    if invoice is None or not invoice.ubl_sha256:
        abort(404)
    settings = current_app.config["HERALD"]
    store = make_store(settings.document_store, settings.instance_path)
    if fmt is DocumentFormat.PDF:
        digest = render_invoice_pdf(session, invoice, store, public_url=settings.public_url,
                                    actor=f"portal:user:{current_user.id}")
    else:
        digest = invoice.ubl_sha256
    extension = "pdf" if fmt is DocumentFormat.PDF else "xml"
    response = send_file(BytesIO(store.get(session, digest)), mimetype=MEDIA_TYPES[fmt],
                         as_attachment=True, download_name=f"{_file_stem(number)}.{extension}",
                         etag=digest, max_age=0)
    # The document is the customer's own: no shared cache may keep it.
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def _file_stem(number: str) -> str:
    # Invoice numbers may hold "/" or spaces; the file name must not.
    return re.sub(r"[^0-9A-Za-z._-]+", "_", number).strip("_") or "document"
