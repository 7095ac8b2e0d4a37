"""The customer's invoice list and invoice page."""

from __future__ import annotations

import re
from io import BytesIO

from flask import Response, abort, current_app, render_template, request, send_file
from flask_login import current_user, login_required

from distribution.documents import MEDIA_TYPES, DocumentFormat, make_store
from distribution.inbox import inbox, mark_listed, mark_viewed
from einvoice.calc import vat_breakdown
from portal.db import db_session
from portal.extensions import htmx
from portal.invoice_documents import document_from_invoice
from portal.invoices import bp
from portal.invoices.queries import customer_invoice, customer_invoices, invoice_payments
from portal.issuing import invoice_key
from portal.models import InvoiceStatus
from portal.recipients_sync import recipient_key
from portal.rendering import render_invoice_pdf

VAT_CATEGORY_NAMES = {
    "S": "Standard rate", "Z": "Zero rated", "E": "Exempt", "AE": "Reverse charge",
    "K": "Intra-community supply", "G": "Export outside the EU", "O": "Outside the scope of VAT",
    "L": "Canary Islands tax", "M": "Ceuta and Melilla tax",
}


def _customer_id() -> int:
    # Staff have no invoices of their own; they look customers up in the ops console.
    if current_user.customer_id is None:
        abort(403)
    return current_user.customer_id


@bp.route("")
@login_required
def index() -> str:
    """The customer's invoices and credit notes, paged; htmx swaps just the table."""
    status_value = request.args.get("status") or None
    status = InvoiceStatus(status_value) if status_value in set(InvoiceStatus) else None
    search = (request.args.get("q") or "").strip()[:64] or None
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    session = db_session()
    result = customer_invoices(session, _customer_id(), status=status, search=search,
                               page=page)
    if htmx:
        return render_template("invoices/_table.html", result=result, status=status,
                               search=search or "", statuses=list(InvoiceStatus))
    key = recipient_key(_customer_id())
    notifications = inbox(session, key, limit=5)
    mark_listed(session, notifications, actor=key)  # shown here: delivered to the inbox
    return render_template("invoices/index.html", result=result, status=status,
                           search=search or "", statuses=list(InvoiceStatus),
                           notifications=[n for n in notifications if n.unread])


@bp.route("/<path:number>")
@login_required
def show(number: str) -> str:
    """One invoice: lines, VAT, totals and payments. Another customer's number is a 404."""
    session = db_session()
    invoice = customer_invoice(session, _customer_id(), number)
    if invoice is None:
        abort(404)
    key = invoice_key(invoice)
    customer_key = recipient_key(invoice.customer_id)
    mark_viewed(session, customer_key,
                [f"{invoice.kind.value}:{key}"], reminder_prefix=f"reminder:{key}:",
                actor=customer_key)
    return render_template("invoices/show.html", invoice=invoice,
                           payments=invoice_payments(session, invoice.id),
                           vat_breakdown=vat_breakdown(document_from_invoice(invoice)),
                           vat_category_names=VAT_CATEGORY_NAMES)


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
