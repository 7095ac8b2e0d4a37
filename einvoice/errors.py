"""Exceptions raised by the einvoice package.

Both carry machine-readable attributes so that callers (the portal, the API)
can point a user at the exact field or XML element that is wrong.
"""

from __future__ import annotations


class EInvoiceError(Exception):
    """Base class of every error this package raises on purpose."""


class InvoiceRuleError(EInvoiceError, ValueError):
    """A document breaks an EN 16931 / Peppol BIS 3.0 business rule.

    Attributes:
        rule: the official rule identifier, e.g. ``"BR-E-10"`` or
            ``"PEPPOL-EN16931-R120"``.
        field: where in the :class:`~einvoice.model.Document` the problem is,
            as a Python-like path such as ``"lines[2].vat_rate"``.
        message: what is wrong and how to fix it.
    """

    def __init__(self, rule: str, field: str, message: str) -> None:
        super().__init__(f"[{rule}] {field}: {message}")
        self.rule = rule
        self.field = field
        self.message = message

    def __repr__(self) -> str:
        return f"InvoiceRuleError({self.rule!r}, {self.field!r}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InvoiceRuleError):
            return NotImplemented
        return (self.rule, self.field, self.message) == (other.rule, other.field, other.message)

    def __hash__(self) -> int:
        return hash((self.rule, self.field, self.message))


class UblReadError(EInvoiceError, ValueError):
    """A UBL document cannot be read into a :class:`~einvoice.model.Document`.

    Attributes:
        element: an XPath-like location of the offending element, e.g.
            ``"/Invoice/cac:InvoiceLine[3]/cbc:InvoicedQuantity"``
            (``"/"`` when the input is not XML at all).
        field: the model field that was being filled, e.g. ``"lines[2].quantity"``
            (empty when no single field is concerned).
        message: what is wrong, e.g. ``"not a number: 'abc'"``.
    """

    def __init__(self, element: str, field: str, message: str) -> None:
        super().__init__(f"{element}: {message}" + (f" (field {field})" if field else ""))
        self.element = element
        self.field = field
        self.message = message
