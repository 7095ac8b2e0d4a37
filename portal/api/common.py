"""What the API's resources share: answers, look-ups that 404, and how records are shown."""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import current_app, jsonify
from sqlalchemy.orm import Session

from portal.api.errors import ApiError
from portal.api.spec import COMPONENTS
from portal.models import Customer, Invoice, Organisation

MONEY = {"type": "string", "pattern": r"^\d{1,16}(\.\d{1,2})?$",
         "description": "an amount above 0 as a string with at most 2 decimals, e.g. '120.15'"}
NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_DATE = {"type": ["string", "null"], "format": "date"}


def settings():
    """Herald's settings."""
    return current_app.config["HERALD"]


def answer(body: dict[str, Any], status: int = 200, location: str | None = None):
    """A JSON answer."""
    response = jsonify(body)
    response.status_code = status
    if location:
        response.headers["Location"] = location
    return response


def not_found(what: str, field: str | None = None) -> ApiError:
    """A 404 naming what was not found."""
    return ApiError(404, "not_found", f"No {what}; check the identifier.", field)


def organisation(session: Session, organisation_id: int | None) -> Organisation:
    """The seller meant: the one named, or the only one."""
    if organisation_id is not None:
        found = session.get(Organisation, organisation_id)
        if found is None:
            raise ApiError(422, "invalid_value", f"organisation_id {organisation_id} is not a "
                           "seller set up in Herald; leave it out when there is only one.",
                           "organisation_id")
        return found
    organisations = session.scalars(sa.select(Organisation).limit(2)).all()
    if len(organisations) != 1:
        raise ApiError(422, "missing_field", "Herald has several sellers; say which one with "
                       "organisation_id.", "organisation_id")
    return organisations[0]


def invoice_by_number(session: Session, number: str, organisation_id: int | None = None
                      ) -> Invoice:
    """The invoice (or credit note) numbered ``number``; 404 when none, 409 when ambiguous."""
    query = sa.select(Invoice).where(Invoice.number == number)
    if organisation_id is not None:
        query = query.where(Invoice.organisation_id == organisation_id)
    found = session.scalars(query.limit(2)).all()
    if not found:
        raise not_found(f"invoice numbered {number}", "number")
    if len(found) > 1:
        raise ApiError(409, "ambiguous_number", f"Several sellers have an invoice numbered "
                       f"{number}; add ?organisation_id= to say whose.", "organisation_id")
    return found[0]


def customer_by_id(session: Session, customer_id: int) -> Customer:
    """The customer with ``customer_id``, else 404."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise not_found(f"customer with id {customer_id}", "customer_id")
    return customer


def money(value: Decimal | None) -> str | None:
    """An amount as the API writes it."""
    return None if value is None else f"{value:.2f}"


def customer_json(customer: Customer) -> dict[str, Any]:
    """A customer as the API shows it."""
    return {
        "id": customer.id, "organisation_id": customer.organisation_id,
        "number": customer.number, "name": customer.name, "kind": customer.kind.value,
        "language": customer.language, "email": customer.primary_email,
        "contacts": [{"name": c.name, "email": c.email, "phone": c.phone,
                      "primary": c.is_primary} for c in customer.contacts],
        "accounts": [a.number for a in customer.accounts],
        "address": {"line1": customer.address_line1, "line2": customer.address_line2,
                    "city": customer.city, "postal_code": customer.postal_code,
                    "country_code": customer.country_code},
        "vat_id": customer.vat_id,
        "peppol_id": (f"{customer.peppol_endpoint_scheme}:{customer.peppol_endpoint_id}"
                      if customer.peppol_endpoint_id else None),
    }


CUSTOMER_SCHEMA = {
    "type": "object",
    "required": ["id", "organisation_id", "number", "name", "kind", "contacts", "accounts"],
    "properties": {
        "id": {"type": "integer"}, "organisation_id": {"type": "integer"},
        "number": {"type": "string"}, "name": {"type": "string"},
        "kind": {"enum": ["consumer", "business"]}, "language": {"type": "string"},
        "email": NULLABLE_STRING,
        "contacts": {"type": "array", "items": {"type": "object", "properties": {
            "name": NULLABLE_STRING, "email": NULLABLE_STRING, "phone": NULLABLE_STRING,
            "primary": {"type": "boolean"}}}},
        "accounts": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {
            k: NULLABLE_STRING for k in ("line1", "line2", "city", "postal_code",
                                         "country_code")}},
        "vat_id": NULLABLE_STRING, "peppol_id": NULLABLE_STRING,
    },
}


def invoice_json(invoice: Invoice, balance: Decimal | None = None) -> dict[str, Any]:
    """An invoice or credit note as the API shows it."""
    base = f"/api/v1/invoices/{invoice.number}"
    issued = invoice.ubl_sha256 is not None
    return {
        "id": invoice.id, "organisation_id": invoice.organisation_id,
        "number": invoice.number, "kind": invoice.kind.value, "status": invoice.status.value,
        "customer": {"id": invoice.customer_id, "number": invoice.customer.number},
        "account": invoice.account.number if invoice.account else None,
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "currency": invoice.currency,
        "tax_exclusive_amount": money(invoice.tax_exclusive_amount),
        "tax_amount": money(invoice.tax_amount),
        "payable_amount": money(invoice.payable_amount),
        "open_balance": money(balance),
        "payment_reference": invoice.payment_reference,
        "issued_at": invoice.issued_at.isoformat() if invoice.issued_at else None,
        "documents": {"pdf": f"{base}/pdf" if issued else None,
                      "ubl": f"{base}/ubl" if issued else None},
    }


INVOICE_SCHEMA = {
    "type": "object",
    "required": ["id", "organisation_id", "number", "kind", "status", "customer",
                 "issue_date", "currency", "payable_amount"],
    "properties": {
        "id": {"type": "integer"}, "organisation_id": {"type": "integer"},
        "number": {"type": "string"}, "kind": {"enum": ["invoice", "credit_note"]},
        "status": {"enum": ["draft", "issued", "partially_paid", "paid", "void", "disputed"]},
        "customer": {"type": "object", "properties": {"id": {"type": "integer"},
                                                       "number": {"type": "string"}}},
        "account": NULLABLE_STRING,
        "issue_date": {"type": "string", "format": "date"}, "due_date": NULLABLE_DATE,
        "currency": {"type": "string"},
        "tax_exclusive_amount": {"type": "string"}, "tax_amount": {"type": "string"},
        "payable_amount": {"type": "string"}, "open_balance": NULLABLE_STRING,
        "payment_reference": NULLABLE_STRING, "issued_at": NULLABLE_STRING,
        "documents": {"type": "object", "properties": {"pdf": NULLABLE_STRING,
                                                        "ubl": NULLABLE_STRING}},
    },
}


def encode_cursor(last_id: int) -> str:
    """An opaque cursor after the row ``last_id``."""
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The row id a cursor points after; 422 when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind == "id" and value.isdigit():
            return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ApiError(422, "invalid_value", "cursor is not valid; pass the next_cursor of the "
                   "previous page unchanged.", "cursor")


COMPONENTS.update(Customer=CUSTOMER_SCHEMA, Invoice=INVOICE_SCHEMA)
