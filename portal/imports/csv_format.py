"""Reads Herald's CSV import format: one row per invoice line (docs/import-format.md).

Rows with the same ``invoice_number`` form one document; the invoice columns
must then agree on every row. Rows are grouped into the JSON format's shape and
checked by the same schema and code, so both formats give the same messages,
located here by row and column.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from portal.imports.documents import ImportedDocument
from portal.imports.json_format import read_mapping
from portal.imports.problems import ImportRejected, Locator, Problem

# CSV column -> path in the JSON format, for the columns that describe the whole document.
DOCUMENT_COLUMNS = {
    "invoice_number": "number",
    "type": "type",
    "status": "status",
    "seller_vat_id": "seller_vat_id",
    "issue_date": "issue_date",
    "due_date": "due_date",
    "currency": "currency",
    "tax_currency": "tax_currency",
    "tax_amount_in_tax_currency": "tax_amount_in_tax_currency",
    "customer_number": "customer.number",
    "customer_name": "customer.name",
    "customer_kind": "customer.kind",
    "customer_email": "customer.email",
    "customer_phone": "customer.phone",
    "customer_language": "customer.language",
    "customer_time_zone": "customer.time_zone",
    "customer_address_line1": "customer.address.line1",
    "customer_address_line2": "customer.address.line2",
    "customer_city": "customer.address.city",
    "customer_postal_code": "customer.address.postal_code",
    "customer_country_subdivision": "customer.address.country_subdivision",
    "customer_country": "customer.address.country_code",
    "customer_vat_id": "customer.vat_id",
    "customer_legal_registration_id": "customer.legal_registration_id",
    "customer_peppol_scheme": "customer.peppol.scheme",
    "customer_peppol_id": "customer.peppol.id",
    "account": "account",
    "buyer_reference": "buyer_reference",
    "order_reference": "order_reference",
    "preceding_invoice_number": "preceding_invoice.number",
    "preceding_invoice_date": "preceding_invoice.issue_date",
    "period_start": "period.start",
    "period_end": "period.end",
    "payment_terms": "payment_terms",
    "payment_reference": "payment_reference",
    "note": "note",
    "expected_payable_amount": "expected_payable_amount",
}

# CSV column -> path inside one line of the JSON format.
LINE_COLUMNS = {
    "line_id": "id",
    "item_name": "item_name",
    "description": "description",
    "seller_item_id": "seller_item_id",
    "quantity": "quantity",
    "unit_code": "unit_code",
    "net_price": "net_price",
    "base_quantity": "base_quantity",
    "vat_category": "vat_category",
    "vat_rate": "vat_rate",
    "vat_exemption_reason": "vat_exemption_reason",
    "vat_exemption_reason_code": "vat_exemption_reason_code",
    "line_period_start": "period.start",
    "line_period_end": "period.end",
}

# Each row may carry one line allowance and one line charge.
LINE_ADJUSTMENT_COLUMNS = {
    "allowance": ("line_allowance_amount", "line_allowance_reason"),
    "charge": ("line_charge_amount", "line_charge_reason"),
}

REQUIRED_COLUMNS = ("invoice_number", "issue_date", "currency", "customer_number", "item_name",
                    "quantity", "unit_code", "net_price", "vat_category")
KNOWN_COLUMNS = set(DOCUMENT_COLUMNS) | set(LINE_COLUMNS) | {
    column for pair in LINE_ADJUSTMENT_COLUMNS.values() for column in pair}


class CsvLocator(Locator):
    """Maps a path in the grouped document back to the row and column it came from."""

    def __init__(self, file: str, number: str, first_row: int) -> None:
        super().__init__(file, f"row {first_row}")
        self.number = number
        self.first_row = first_row
        self.line_rows: list[int] = []
        self.line_adjustments: list[list[str]] = []  # per line: kind of each adjustment

    def problem(self, path: str, message: str) -> Problem:
        match = re.match(r"lines\[(\d+)\]\.?(.*)", path)
        if match:
            index, rest = int(match.group(1)), match.group(2)
            row = self.line_rows[index] if index < len(self.line_rows) else self.first_row
            adjustment = re.match(r"allowances_charges\[(\d+)\]\.?(.*)", rest)
            if adjustment:
                kind = self.line_adjustments[index][int(adjustment.group(1))]
                amount_col, reason_col = LINE_ADJUSTMENT_COLUMNS[kind]
                column = reason_col if adjustment.group(2).startswith("reason") else amount_col
            else:
                column = _column_for(LINE_COLUMNS, rest) or rest
            return Problem(self.file, f"row {row} (invoice {self.number})", column, message,
                           self.number)
        column = _column_for(DOCUMENT_COLUMNS, path) or path
        return Problem(self.file, f"row {self.first_row} (invoice {self.number})", column, message,
                       self.number)


def _column_for(columns: dict[str, str], path: str) -> str | None:
    for column, target in columns.items():
        if target == path:
            return column
    # a missing object (e.g. customer.address) is reported on its first column
    for column, target in columns.items():
        if target.startswith(path + ".") or (path and target.startswith(path)):
            return column
    return None


def read_csv(data: bytes, file: str) -> list[ImportedDocument]:
    """Every document of a CSV import file; raises ImportRejected with all problems."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRejected([Problem(file, f"byte {exc.start}", "",
                                      "is not UTF-8 text; save the file as CSV UTF-8")]) from exc
    delimiter = ";" if text.partition("\n")[0].count(";") > text.partition("\n")[0].count(",") \
        else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = header
    header_problems = [
        Problem(file, "row 1", column, "is not a column Herald knows; check its spelling "
                                       "against docs/import-format.md")
        for column in header if column not in KNOWN_COLUMNS
    ] + [
        Problem(file, "row 1", column, "column is missing; it is required")
        for column in REQUIRED_COLUMNS if column not in header
    ]
    if header_problems:
        raise ImportRejected(header_problems)

    groups: dict[str, tuple[CsvLocator, dict[str, Any], dict[str, str]]] = {}
    problems: list[Problem] = []
    try:
        for row in reader:
            row_number = reader.line_num
            if None in row:
                problems.append(Problem(file, f"row {row_number}", "",
                                        "has more cells than the header has columns"))
                continue
            cells = {k: (v or "").strip() for k, v in row.items()}
            if not any(cells.values()):
                continue
            number = cells["invoice_number"]
            if number not in groups:
                locator = CsvLocator(file, number or "?", row_number)
                groups[number] = (locator, _document_part(cells), cells)
            else:
                locator, document, first = groups[number]
                problems.extend(_disagreements(file, row_number, number, first, cells))
            locator, document, _ = groups[number]
            locator.line_rows.append(row_number)
            line, kinds = _line_part(cells)
            locator.line_adjustments.append(kinds)
            document.setdefault("lines", []).append(line)
    except csv.Error as exc:
        problems.append(Problem(file, f"row {reader.line_num}", "", f"is not valid CSV ({exc})"))
    if not groups and not problems:
        problems.append(Problem(file, "", "", "has a header but no rows; add one row per line"))

    documents: list[ImportedDocument] = []
    for locator, document, _ in groups.values():
        try:
            documents.append(read_mapping(document, locator, source="csv"))
        except ImportRejected as rejected:
            problems.extend(rejected.problems)
    if problems:
        raise ImportRejected(problems)
    return documents


def _set(target: dict[str, Any], path: str, value: str) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        target = target.setdefault(key, {})
    target[leaf] = value


def _document_part(cells: dict[str, str]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for column, path in DOCUMENT_COLUMNS.items():
        if cells.get(column):
            _set(document, path, cells[column])
    return document


def _line_part(cells: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    line: dict[str, Any] = {}
    for column, path in LINE_COLUMNS.items():
        if cells.get(column):
            _set(line, path, cells[column])
    kinds = []
    for kind, (amount_col, reason_col) in LINE_ADJUSTMENT_COLUMNS.items():
        if cells.get(amount_col) or cells.get(reason_col):
            item = {"kind": kind}
            if cells.get(amount_col):
                item["amount"] = cells[amount_col]
            if cells.get(reason_col):
                item["reason"] = cells[reason_col]
            line.setdefault("allowances_charges", []).append(item)
            kinds.append(kind)
    return line, kinds


def _disagreements(file: str, row: int, number: str, first: dict[str, str],
                   cells: dict[str, str]) -> list[Problem]:
    return [
        Problem(file, f"row {row} (invoice {number})", column,
                f"{cells[column]!r} differs from {first[column]!r} on this invoice's first row; "
                "invoice columns must be the same on every row of one invoice", number)
        for column in DOCUMENT_COLUMNS
        if cells.get(column, "") != first.get(column, "") and column in cells
    ]
