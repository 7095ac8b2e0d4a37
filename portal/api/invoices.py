"""/api/v1/invoices: list with filters and cursor paging, read one, its PDF and UBL, create."""

from __future__ import annotations

import json
import logging
from datetime import date
from importlib import resources
from io import BytesIO

import sqlalchemy as sa
from flask import current_app, send_file

from distribution.documents import (
    MEDIA_TYPES,
    DocumentFormat,
    DocumentStoreUnavailable,
    make_store,
)
from portal.api import bp
from portal.api.auth import current_caller
from portal.api.common import (
    answer,
    decode_cursor,
    encode_cursor,
    invoice_by_number,
    invoice_json,
    settings,
)
from portal.api.errors import ApiError
from portal.api.spec import COMPONENTS, Param, body, operation, query
from portal.db import db_session
from portal.imports.json_format import SCHEMA_FILE, read_mapping
from portal.imports.problems import ImportRejected, Locator
from portal.imports.service import import_documents
from portal.invoices.queries import open_balances
from portal.models import DocumentKind, Invoice, InvoiceStatus
from portal.rendering import render_invoice_pdf
from portal.tasks import enqueue_pdf_rendering

log = logging.getLogger(__name__)


def _import_components() -> None:
    """The import format's JSON Schema, as components (one source for both)."""
    schema = json.loads(resources.files("portal.imports").joinpath(SCHEMA_FILE).read_text())
    text = json.dumps(schema["$defs"]).replace('"#/$defs/', '"#/components/schemas/Import_')
    for name, definition in json.loads(text).items():
        COMPONENTS[f"Import_{name}"] = definition


_import_components()

ORG_PARAM = Param("organisation_id", {"type": "integer", "minimum": 1},
                  "The seller, when several sellers use the same invoice number.")
STATUSES = [s.value for s in InvoiceStatus]


def _date(value: str | None, field: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(422, "invalid_value", f"{field} must be a date as YYYY-MM-DD.",
                       field) from None


@operation(bp, "/invoices", "GET", tag="invoices", summary="List invoices",
           query=[Param("customer_id", {"type": "integer", "minimum": 1}, "Only this customer's."),
                  Param("customer_number", {"type": "string", "maxLength": 40},
                        "Only the customer with this number."),
                  Param("status", {"enum": STATUSES}, "Only invoices with this status."),
                  Param("kind", {"enum": ["invoice", "credit_note"]}, "Invoices or credit notes."),
                  Param("issued_from", {"type": "string", "format": "date"},
                        "Issued on or after this date (YYYY-MM-DD)."),
                  Param("issued_to", {"type": "string", "format": "date"},
                        "Issued on or before this date (YYYY-MM-DD)."),
                  ORG_PARAM,
                  Param("limit", {"type": "integer", "minimum": 1, "maximum": 200},
                        "Page size (default 50)."),
                  Param("cursor", {"type": "string", "maxLength": 64},
                        "next_cursor of the previous page.")],
           responses={200: ("A page of invoices, newest first.", {
               "type": "object", "required": ["data", "next_cursor"], "properties": {
                   "data": {"type": "array", "items": {"$ref": "#/components/schemas/Invoice"}},
                   "next_cursor": {"type": ["string", "null"],
                                   "description": "Pass as cursor for the next page; null "
                                                  "on the last page."}}})})
def list_invoices():
    """Invoices and credit notes, newest first, filtered; page with next_cursor."""
    args = query()
    session = db_session()
    stmt = sa.select(Invoice)
    if "customer_id" in args:
        stmt = stmt.where(Invoice.customer_id == args["customer_id"])
    if "customer_number" in args:
        from portal.models import Customer

        stmt = stmt.join(Customer, Customer.id == Invoice.customer_id).where(
            Customer.number == args["customer_number"])
    if "status" in args:
        stmt = stmt.where(Invoice.status == InvoiceStatus(args["status"]))
    if "kind" in args:
        stmt = stmt.where(Invoice.kind == DocumentKind(args["kind"]))
    if "organisation_id" in args:
        stmt = stmt.where(Invoice.organisation_id == args["organisation_id"])
    issued_from = _date(args.get("issued_from"), "issued_from")
    issued_to = _date(args.get("issued_to"), "issued_to")
    if issued_from:
        stmt = stmt.where(Invoice.issue_date >= issued_from)
    if issued_to:
        stmt = stmt.where(Invoice.issue_date <= issued_to)
    if "cursor" in args:
        stmt = stmt.where(Invoice.id < decode_cursor(args["cursor"]))
    limit = args.get("limit", 50)
    rows = list(session.scalars(stmt.order_by(Invoice.id.desc()).limit(limit + 1)))
    page, more = rows[:limit], len(rows) > limit
    balances = open_balances(session, page)
    return answer({"data": [invoice_json(i, balances.get(i.id)) for i in page],
                   "next_cursor": encode_cursor(page[-1].id) if more and page else None})


@operation(bp, "/invoices/<path:number>", "GET", tag="invoices", summary="Get an invoice",
           query=[ORG_PARAM],
           responses={200: ("The invoice.", {"$ref": "#/components/schemas/Invoice"})})
def get_invoice(number: str):
    """One invoice or credit note by its number, with its open balance."""
    session = db_session()
    invoice = invoice_by_number(session, number, query().get("organisation_id"))
    return answer(invoice_json(invoice, open_balances(session, [invoice]).get(invoice.id)))


def _document(number: str, fmt: DocumentFormat):
    session = db_session()
    invoice = invoice_by_number(session, number, query().get("organisation_id"))
    if not invoice.ubl_sha256:
        raise ApiError(404, "not_issued", f"{number} is a draft; only issued documents have "
                       "a PDF and UBL.", "number")
    config = settings()
    store = make_store(config.document_store, config.instance_path)
    if fmt is DocumentFormat.PDF:
        digest = render_invoice_pdf(session, invoice, store, public_url=config.public_url,
                                    actor=current_caller().actor)
    else:
        digest = invoice.ubl_sha256
    extension = "pdf" if fmt is DocumentFormat.PDF else "xml"
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in number)
    return send_file(BytesIO(store.get(session, digest)), mimetype=MEDIA_TYPES[fmt],
                     as_attachment=True, download_name=f"{stem}.{extension}", etag=digest,
                     max_age=0)


@operation(bp, "/invoices/<path:number>/pdf", "GET", tag="invoices",
           summary="Download an invoice's PDF", query=[ORG_PARAM],
           responses={200: ("The PDF (PDF/A-3 with the UBL attached).", None, "application/pdf")})
def invoice_pdf(number: str):
    """The invoice's PDF, rendered once and kept."""
    return _document(number, DocumentFormat.PDF)


@operation(bp, "/invoices/<path:number>/ubl", "GET", tag="invoices",
           summary="Download an invoice's UBL XML", query=[ORG_PARAM],
           responses={200: ("The UBL XML, byte for byte as issued.", None,
                            "application/xml")})
def invoice_ubl(number: str):
    """The invoice's UBL XML as it was issued."""
    return _document(number, DocumentFormat.UBL)


@operation(bp, "/invoices", "POST", tag="invoices", scope="invoices:write",
           summary="Create and issue an invoice or credit note",
           body={"$ref": "#/components/schemas/Import_document"}, validate=False,
           responses={201: ("Created (and issued unless status is draft).",
                            {"$ref": "#/components/schemas/Invoice"}),
                      200: ("The same document was created before; it is returned unchanged.",
                            {"$ref": "#/components/schemas/Invoice"}),
                      503: ("The document could not be stored (e.g. the archive's disk is "
                            "full); nothing was created. Retry after Retry-After seconds.",
                            {"$ref": "#/components/schemas/Error"})})
def create_invoice():
    """One document in Herald's JSON import format (docs/import-format.md). It is issued at
    once (validated, UBL frozen) unless status is draft. Sending the same document again
    creates nothing; the same number with other content is refused."""
    data = body()
    try:
        document = read_mapping(data, Locator("request", "body"), source="api")
    except ImportRejected as rejected:
        raise _rejected(rejected) from None
    session = db_session()
    config = settings()
    store = make_store(config.document_store, config.instance_path)
    try:
        result = import_documents(session, [document], file="request",
                                  rules_dir=config.einvoice_rules_dir, store=store,
                                  actor=current_caller().actor)
    except ImportRejected as rejected:
        raise _rejected(rejected) from None
    except DocumentStoreUnavailable as exc:  # e.g. its disk is full; nothing was kept
        log.error("invoice not issued: %s", exc)
        raise ApiError(503, "document_store_unavailable", "the document could not be stored, "
                       "so nothing was created; try again later",
                       headers={"Retry-After": "60"}) from None
    invoice = session.scalars(sa.select(Invoice).where(
        Invoice.number == document.number, Invoice.content_sha256 == document.fingerprint)
        .order_by(Invoice.id.desc())).first()
    if result.created and invoice.ubl_sha256 and not invoice.pdf_sha256:
        invoice_id = invoice.id
        from portal.pay.recovery import after_commit

        app = current_app._get_current_object()
        after_commit(session, lambda: enqueue_pdf_rendering(app, [invoice_id]))
    status = 201 if result.created else 200
    return answer(invoice_json(invoice), status,
                  location=f"/api/v1/invoices/{invoice.number}")


def _rejected(rejected: ImportRejected) -> ApiError:
    first = rejected.problems[0]
    others = len(rejected.problems) - 1
    message = (f"{first.field}: {first.message}" if first.field else first.message)
    if others:
        message += f" (and {others} more problem{'s' if others > 1 else ''}: " + "; ".join(
            f"{p.field}: {p.message}" if p.field else p.message
            for p in rejected.problems[1:4]) + ")"
    return ApiError(422, "invalid_document", message, first.field or None)
