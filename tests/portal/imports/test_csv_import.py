"""Importing the CSV format: one row per invoice line (portal/imports/csv_format.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.factories import INVOICE_JSON_PAYABLE
from tests.portal.imports.conftest import invoice, problem_lines, row_counts

HEADER = ("invoice_number;issue_date;due_date;currency;customer_number;customer_name;"
          "customer_country;buyer_reference;item_name;quantity;unit_code;net_price;"
          "vat_category;vat_rate;line_allowance_amount;line_allowance_reason;"
          "line_charge_amount;line_charge_reason")
ROWS = [
    "INV-100;2026-10-01;2026-10-31;EUR;C1;;;REF-1;Fibre internet;1;C62;41.32;S;21;;;;",
    "INV-100;2026-10-01;2026-10-31;EUR;C1;;;REF-1;Electricity;229;KWH;0.2890;S;6;;;;",
    "INV-101;2026-10-02;2026-11-01;EUR;C9;Café Zeebries;BE;REF-2;Coffee beans;3;KGM;12.50;S;6;"
    "1.50;Loyalty;;",
    'INV-101;2026-10-02;2026-11-01;EUR;C9;Café Zeebries;BE;REF-2;"Delivery; express";1;C62;5;S;21;'
    ";;2.00;Express",
    "INV-101;2026-10-02;2026-11-01;EUR;C9;Café Zeebries;BE;REF-2;Cups;10;C62;0.5;S;21;;;;",
]


def csv_text(header: str, rows: list[str], delimiter: str = ",") -> str:
    """A CSV file from ``;``-separated lines, with ``delimiter`` between cells."""
    return "\r\n".join(line.replace(";", delimiter) for line in [header, *rows]) + "\r\n"


def test_semicolon_file_with_bom_and_several_invoices_of_several_rows(
        session, seller, write_bytes, run_import):
    path = write_bytes("invoices.csv", b"\xef\xbb\xbf" + "\r\n".join([HEADER, *ROWS]).encode())

    result = run_import(path)

    assert result.exit_code == 0, result.output
    assert f"{path}: created 2" in result.stdout
    first = invoice(session, "INV-100")
    assert first.source == "csv"
    assert [line.item_name for line in first.lines] == ["Fibre internet", "Electricity"]
    assert first.payable_amount == INVOICE_JSON_PAYABLE
    second = invoice(session, "INV-101")
    assert second.customer.name == "Café Zeebries"
    assert second.lines[1].item_name == "Delivery; express"
    # coffee 3 x 12.50 - 1.50 = 36.00 at 6 % -> 2.16; delivery 5 + 2.00 charge = 7.00 and
    # cups 10 x 0.5 = 5.00 at 21 % -> 12.00 x 21 % = 2.52; 48.00 + 4.68 = 52.68
    assert [line.net_amount for line in second.lines] == [
        Decimal("36.00"), Decimal("7.00"), Decimal("5.00")]
    assert second.lines[0].allowances_charges[0].reason == "Loyalty"
    assert second.lines[1].allowances_charges[0].is_charge
    assert second.line_extension_amount == Decimal("48.00")
    assert second.tax_amount == Decimal("4.68")
    assert second.payable_amount == Decimal("52.68")


def test_comma_file_reads_the_same(session, seller, write_bytes, run_import):
    rows = [row for row in ROWS if "Delivery" not in row]
    path = write_bytes("invoices.csv", csv_text(HEADER, rows, delimiter=","))

    result = run_import(path)

    assert result.exit_code == 0, result.output
    assert invoice(session, "INV-100").payable_amount == INVOICE_JSON_PAYABLE
    # without the delivery line: 36.00 at 6 % (2.16) and 5.00 at 21 % (1.05)
    assert invoice(session, "INV-101").payable_amount == Decimal("44.21")


MINIMAL_HEADER = ("invoice_number;issue_date;due_date;currency;customer_number;buyer_reference;"
                  "item_name;quantity;unit_code;net_price;vat_category;vat_rate;vat_exemption_reason;"
                  "line_allowance_amount;line_allowance_reason")
GOOD_ROW = "INV-1;2026-10-01;2026-10-31;EUR;C1;R;Fibre;1;C62;10;S;21;;;"

# (name, the second invoice's row, row, column, words the message must contain)
BAD_ROWS = [
    ("bad date", "INV-2;2026-13-01;2026-10-31;EUR;C1;R;Fibre;1;C62;10;S;21;;;",
     "issue_date", "'2026-13-01' is not a date"),
    ("not a number", "INV-2;2026-10-01;2026-10-31;EUR;C1;R;Fibre;one;C62;10;S;21;;;",
     "quantity", "'one' has the wrong form"),
    ("amount with 3 decimals",
     "INV-2;2026-10-01;2026-10-31;EUR;C1;R;Fibre;1;C62;10;S;21;;1.005;Promo",
     "line_allowance_amount", "'1.005' has the wrong form"),
    ("allowance without reason",
     "INV-2;2026-10-01;2026-10-31;EUR;C1;R;Fibre;1;C62;10;S;21;;1.00;",
     "line_allowance_reason", "is missing; say why"),
    ("negative price", "INV-2;2026-10-01;2026-10-31;EUR;C1;R;Fibre;1;C62;-10;S;21;;;",
     "net_price", "must not be negative"),
    ("unknown VAT category", "INV-2;2026-10-01;2026-10-31;EUR;C1;R;Fibre;1;C62;10;X;21;;;",
     "vat_category", "'X' is not allowed"),
    ("exempt without reason", "INV-2;2026-10-01;2026-10-31;EUR;C1;R;Fibre;1;C62;10;E;0;;;",
     "vat_exemption_reason", "needs an exemption reason"),
    ("reverse charge for a customer without VAT ID",
     "INV-2;2026-10-01;2026-10-31;EUR;C1;R;Fibre;1;C62;10;AE;0;Reverse charge;;",
     "customer_vat_id", "needs the buyer's VAT identifier"),
    ("standard rate 0", "INV-2;2026-10-01;2026-10-31;EUR;C1;R;Fibre;1;C62;10;S;0;;;",
     "vat_rate", "must be above 0"),
    ("new customer without name", "INV-2;2026-10-01;2026-10-31;EUR;NEW;R;Fibre;1;C62;10;S;21;;;",
     "customer_name", "customer NEW is new to Herald, so its name is needed"),
]


@pytest.mark.parametrize(("row", "column", "words"), [case[1:] for case in BAD_ROWS],
                         ids=[case[0] for case in BAD_ROWS])
def test_bad_row_is_refused_naming_row_invoice_and_column(
        session, seller, write_bytes, run_import, row, column, words):
    path = write_bytes("bad.csv", csv_text(MINIMAL_HEADER, [GOOD_ROW, row]))
    before = row_counts(session)

    result = run_import(path)

    assert result.exit_code == 1
    problems = problem_lines(result)
    assert all(p.startswith(f"{path}, row 3 (invoice INV-2), field '") for p in problems)
    named = [p for p in problems if p.startswith(f"{path}, row 3 (invoice INV-2), "
                                                 f"field '{column}': ")]
    assert len(named) == 1, result.output
    assert words in named[0]
    assert row_counts(session) == before


def test_rows_of_one_invoice_that_disagree_are_refused(session, seller, write_bytes,
                                                       run_import):
    rows = [GOOD_ROW, GOOD_ROW.replace("2026-10-01", "2026-10-02").replace("Fibre", "TV")]
    path = write_bytes("disagree.csv", csv_text(MINIMAL_HEADER, rows))

    result = run_import(path)

    assert result.exit_code == 1
    assert problem_lines(result) == [
        f"{path}, row 3 (invoice INV-1), field 'issue_date': '2026-10-02' differs from "
        "'2026-10-01' on this invoice's first row; invoice columns must be the same on every "
        "row of one invoice"]
    assert "rejected 1." in result.stdout


def test_unknown_column_is_refused(seller, write_bytes, run_import):
    path = write_bytes("unknown.csv", csv_text(MINIMAL_HEADER + ";colour", [GOOD_ROW + ";red"]))

    result = run_import(path)

    assert result.exit_code == 1
    assert problem_lines(result) == [
        f"{path}, row 1, field 'colour': is not a column Herald knows; check its spelling "
        "against docs/import-format.md"]


def test_missing_required_column_is_refused(seller, write_bytes, run_import):
    header = MINIMAL_HEADER.replace("customer_number;", "")
    path = write_bytes("missing.csv", csv_text(header, [GOOD_ROW.replace("C1;", "")]))

    result = run_import(path)

    assert result.exit_code == 1
    assert problem_lines(result) == [
        f"{path}, row 1, field 'customer_number': column is missing; it is required"]


def test_csv_that_is_not_utf8_is_refused(seller, write_bytes, run_import):
    path = write_bytes("latin1.csv", csv_text(MINIMAL_HEADER, [GOOD_ROW.replace("Fibre", "Télé")]
                                              ).encode("latin-1"))

    result = run_import(path)

    assert result.exit_code == 1
    [problem] = problem_lines(result)
    assert problem.startswith(f"{path}, byte ")
    assert problem.endswith("is not UTF-8 text; save the file as CSV UTF-8")
