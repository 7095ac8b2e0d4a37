"""Words shown for stored codes (statuses, payment methods, message types, VAT categories).

Codes stay English in the database and the API; people see these labels, translated.
Each map holds lazy strings so the language is the reader's at render time.
"""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

INVOICE_STATUSES = {
    "draft": _l("Draft"),
    "issued": _l("Open"),
    "partially_paid": _l("Partially paid"),
    "paid": _l("Paid"),
    "void": _l("Cancelled"),
    "disputed": _l("Disputed"),
}

PAYMENT_METHODS = {
    "bank_transfer": _l("bank transfer"),
    "card": _l("card"),
    "direct_debit": _l("direct debit"),
    "other": _l("other"),
}

MESSAGE_TYPES = {
    "invoice": _l("Invoice"),
    "credit_note": _l("Credit note"),
    "reminder": _l("Payment reminder"),
    "receipt": _l("Payment receipt"),
    "signature_request": _l("Request to sign"),
    "notice": _l("Notice"),
}

VAT_CATEGORIES = {
    "S": _l("Standard rate"), "Z": _l("Zero rated"), "E": _l("Exempt"),
    "AE": _l("Reverse charge"), "K": _l("Intra-community supply"),
    "G": _l("Export outside the EU"), "O": _l("Outside the scope of VAT"),
    "L": _l("Canary Islands tax"), "M": _l("Ceuta and Melilla tax"),
}


def label_for(names: dict[str, object], code: object) -> str:
    """The translated label of ``code`` (an enum or its value) in ``names``."""
    value = getattr(code, "value", code)
    label = names.get(str(value))
    # An unknown code is shown readably rather than hidden.
    return str(label) if label is not None else str(value).replace("_", " ").capitalize()


def invoice_status(code: object) -> str:
    """An invoice status for people: ``partially_paid`` → "Partially paid"."""
    return label_for(INVOICE_STATUSES, code)


def payment_method(code: object) -> str:
    """A payment method for people, lower case to sit inside a sentence."""
    return label_for(PAYMENT_METHODS, code)


def message_type(code: object) -> str:
    """A message type (``reminder``, ``receipt``...) for people."""
    return label_for(MESSAGE_TYPES, code)


def vat_category(code: object) -> str:
    """A VAT category code (EN 16931 UNCL5305) for people: ``AE`` → "Reverse charge"."""
    return label_for(VAT_CATEGORIES, code)


def init_app(app: Flask) -> None:
    """Register the labels as template filters."""
    for function in (invoice_status, payment_method, message_type, vat_category):
        app.add_template_filter(function)
