"""The normalised form every import format is turned into before anything is written.

JSON maps onto it directly; CSV rows are grouped into the same shape; UBL is
read by ``einvoice`` and converted. Values are checked here (decimals, dates,
scales), so the service that writes the records only sees clean input.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import einvoice
from portal.imports.problems import ImportRejected, Locator, Problem


@dataclass(slots=True)
class CustomerInput:
    """Who an imported document is for: found by ``number``, created from the rest if new."""

    number: str
    name: str | None = None
    kind: str | None = None
    email: str | None = None
    phone: str | None = None
    language: str | None = None
    time_zone: str | None = None
    address_lines: list[str] = field(default_factory=list)
    city: str | None = None
    postal_code: str | None = None
    country_subdivision: str | None = None
    country_code: str | None = None
    vat_id: str | None = None
    legal_registration_id: str | None = None
    peppol_scheme: str | None = None
    peppol_id: str | None = None


@dataclass(slots=True)
class ImportedDocument:
    """One invoice or credit note read from a file, not yet matched to the database."""

    locator: Locator
    kind: einvoice.DocumentKind
    number: str
    status: str
    issue_date: date
    currency: str
    customer: CustomerInput
    lines: list[einvoice.Line]
    source: str
    due_date: date | None = None
    seller_vat_id: str | None = None
    seller_endpoint: tuple[str, str] | None = None
    account_number: str | None = None
    tax_currency: str | None = None
    tax_amount_in_tax_currency: Decimal | None = None
    buyer_reference: str | None = None
    order_reference: str | None = None
    preceding_invoice: tuple[str, date | None] | None = None
    period_start: date | None = None
    period_end: date | None = None
    payment_terms: str | None = None
    payment_means_code: str | None = None
    payment_reference: str | None = None
    note: str | None = None
    allowances_charges: list[einvoice.AllowanceCharge] = field(default_factory=list)
    vat_exemptions: dict[str, einvoice.VatExemption] = field(default_factory=dict)
    # Amounts the file states and Herald recomputes: (field as the file names it,
    # attribute of einvoice.Totals, value). A difference refuses the document.
    expected_amounts: list[tuple[str, str, Decimal]] = field(default_factory=list)
    # Paid in advance (BT-113) and rounding (BT-114): only UBL states them; they change
    # the amount due, so they are kept for the recomputation.
    prepaid_amount: Decimal | None = None
    rounding_amount: Decimal | None = None
    fingerprint: str = ""
    original_ubl: bytes | None = None  # a UBL import is kept exactly as its issuer wrote it


class ValueReader:
    """Reads typed values out of a mapping, collecting problems instead of stopping at the first."""

    def __init__(self, locator: Locator) -> None:
        self.locator = locator
        self.problems: list[Problem] = []

    def fail(self, path: str, message: str) -> None:
        """Record a problem at ``path``."""
        self.problems.append(self.locator.problem(path, message))

    def decimal(self, value: Any, path: str, *, decimals: int, negative: bool = True,
                required: bool = False) -> Decimal | None:
        """An exact decimal with at most ``decimals`` decimals; floats never get here."""
        if value is None or value == "":
            if required:
                self.fail(path, "is missing; give a number such as 12.50")
            return None
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            self.fail(path, f"{value!r} is not a number; write it like 1234.56 "
                            "(a point for decimals, no thousands separator)")
            return None
        if not number.is_finite():
            self.fail(path, f"{value!r} is not a number")
            return None
        if abs(number) >= Decimal(10) ** 14:
            self.fail(path, f"{value} is too large; the largest accepted is 99999999999999")
            return None
        if -number.as_tuple().exponent > decimals and number != number.quantize(
                Decimal(1).scaleb(-decimals)):
            self.fail(path, f"{value} has more than {decimals} decimals; round it to {decimals}")
            return None
        if number < 0 and not negative:
            self.fail(path, f"{value} is negative; it must be 0 or more")
            return None
        return number

    def date(self, value: Any, path: str, *, required: bool = False) -> date | None:
        """An ISO 8601 date (YYYY-MM-DD)."""
        if value is None or value == "":
            if required:
                self.fail(path, "is missing; give a date as YYYY-MM-DD")
            return None
        try:
            return date.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(path, f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-11-23")
            return None

    def raise_if_any(self) -> None:
        """Raise :class:`ImportRejected` when problems were collected."""
        if self.problems:
            raise ImportRejected(self.problems)


def fingerprint(data: Any) -> str:
    """SHA-256 of a canonical JSON form, so that a re-import is recognised as unchanged."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
