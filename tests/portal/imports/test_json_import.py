"""Importing the JSON format (portal/imports/json_format.py and mapping.py)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.models import Customer, CustomerKind, DocumentKind, InvoiceStatus
from tests.factories import INVOICE_JSON_PAYABLE, invoice_json
from tests.portal.imports.conftest import invoice, problem_lines, row_counts


def test_single_object_is_stored_with_amounts_worked_out_by_hand(session, seller, write_json,
                                                                 run_import):
    path = write_json(invoice_json("INV-1"))

    result = run_import(path)

    assert result.exit_code == 0, result.output
    stored = invoice(session, "INV-1")
    assert stored.kind is DocumentKind.INVOICE
    assert stored.status is InvoiceStatus.ISSUED
    assert stored.issued_at is not None
    assert stored.source == "json"
    assert stored.customer.number == "C1"
    assert stored.buyer_reference == "REF-1"
    # see INVOICE_JSON_PAYABLE: 41.32 + 66.18 net, 8.68 + 3.97 VAT
    assert [line.net_amount for line in stored.lines] == [Decimal("41.32"), Decimal("66.18")]
    assert [line.net_price for line in stored.lines] == [Decimal("41.32"), Decimal("0.2890")]
    assert stored.lines[1].quantity == Decimal("229")
    assert stored.line_extension_amount == Decimal("107.50")
    assert stored.tax_exclusive_amount == Decimal("107.50")
    assert stored.tax_amount == Decimal("12.65")
    assert stored.tax_inclusive_amount == Decimal("120.15")
    assert stored.payable_amount == INVOICE_JSON_PAYABLE
    assert isinstance(stored.payable_amount, Decimal)
    assert str(stored.payable_amount) == "120.15"


def test_array_with_numbers_draft_credit_note_and_allowances(session, seller, write_json,
                                                            run_import):
    first = invoice_json("INV-1", expected_payable_amount=str(INVOICE_JSON_PAYABLE))
    # JSON numbers are read as exact decimals, never as floats
    first["lines"][1].update(quantity=229, net_price=Decimal("0.2890"))
    draft = invoice_json("INV-2", status="draft")
    credit = {
        "type": "credit_note", "number": "CN-1", "issue_date": "2026-10-05", "currency": "EUR",
        "buyer_reference": "PO-77",
        "customer": {"number": "C2", "name": "Acme BV", "vat_id": "BE0987654321",
                     "email": "Billing@Acme.example",
                     "address": {"line1": "Kerkstraat 2", "city": "Antwerpen",
                                 "postal_code": "2000", "country_code": "BE"}},
        "preceding_invoice": {"number": "INV-0", "issue_date": "2026-09-01"},
        "payment_terms": "Deducted from your next invoice.",
        "lines": [{"item_name": "Refund", "quantity": "1", "unit_code": "C62", "net_price": "10",
                   "vat_category": "S", "vat_rate": "21",
                   "allowances_charges": [{"kind": "allowance", "amount": "1.00",
                                           "reason": "Loyalty"}]}],
        "allowances_charges": [{"kind": "charge", "amount": "2.00", "reason": "Handling",
                                "vat_category": "S", "vat_rate": "21"}],
    }
    path = write_json([first, draft, credit])

    result = run_import(path)

    assert result.exit_code == 0, result.output
    assert f"{path}: created 3" in result.stdout
    assert invoice(session, "INV-1").payable_amount == INVOICE_JSON_PAYABLE
    stored_draft = invoice(session, "INV-2")
    assert stored_draft.status is InvoiceStatus.DRAFT
    assert stored_draft.issued_at is None
    note = invoice(session, "CN-1")
    assert note.kind is DocumentKind.CREDIT_NOTE
    assert note.type_code == "381"
    assert note.preceding_invoice_number == "INV-0"
    # 10.00 - 1.00 line allowance = 9.00; + 2.00 charge = 11.00; VAT 21 % = 2.31
    assert note.lines[0].net_amount == Decimal("9.00")
    assert note.lines[0].allowances_charges[0].amount == Decimal("1.00")
    assert note.charge_total == Decimal("2.00")
    assert note.tax_exclusive_amount == Decimal("11.00")
    assert note.tax_amount == Decimal("2.31")
    assert note.payable_amount == Decimal("13.31")
    customer = session.scalars(sa.select(Customer).where(Customer.number == "C2")).one()
    assert (customer.name, customer.kind, customer.country_code, customer.city) == (
        "Acme BV", CustomerKind.BUSINESS, "BE", "Antwerpen")
    assert customer.contacts[0].email == "billing@acme.example"


def test_exempt_line_keeps_its_exemption_reason(session, seller, write_json, run_import):
    document = invoice_json("INV-E", lines=[
        {"item_name": "Training", "quantity": "2", "unit_code": "C62", "net_price": "50",
         "vat_category": "E", "vat_rate": "0", "vat_exemption_reason": "Article 44"}])

    result = run_import(write_json(document))

    assert result.exit_code == 0, result.output
    stored = invoice(session, "INV-E")
    assert stored.lines[0].vat_exemption_reason == "Article 44"
    assert (stored.tax_amount, stored.payable_amount) == (Decimal("0.00"), Decimal("100.00"))


def _line(**changes) -> dict:
    line = {"item_name": "Fibre internet", "quantity": "1", "unit_code": "C62",
            "net_price": "41.32", "vat_category": "S", "vat_rate": "21"}
    line.update(changes)
    return line


def _without(mapping: dict, key: str) -> dict:
    return {k: v for k, v in mapping.items() if k != key}


# (name, document, field the problem names, words the message must contain)
BAD_DOCUMENTS = [
    ("wrong type", invoice_json(lines=[_line(quantity=True)]),
     "lines[1].quantity", "has the wrong type; expected number or string"),
    ("unknown field", invoice_json(colour="red"), "colour", "is not a field Herald knows"),
    ("unknown line field", invoice_json(lines=[_line(colour="red")]),
     "lines[1].colour", "is not a field Herald knows"),
    ("missing required field", _without(invoice_json(), "currency"),
     "currency", "is missing; it is required"),
    ("missing line field", invoice_json(lines=[_without(_line(), "net_price")]),
     "lines[1].net_price", "is missing"),
    ("amount with 3 decimals as text", invoice_json(expected_payable_amount="120.150"),
     "expected_payable_amount", "'120.150' has the wrong form"),
    ("amount with 3 decimals as number",
     invoice_json(expected_payable_amount=Decimal("120.155")),
     "expected_payable_amount", "120.155 has more than 2 decimals"),
    ("quantity with 7 decimals", invoice_json(lines=[_line(quantity=Decimal("1.1234567"))]),
     "lines[1].quantity", "has more than 6 decimals"),
    ("date that does not exist", invoice_json(issue_date="2026-02-30"),
     "issue_date", "'2026-02-30' is not a date; write it as YYYY-MM-DD"),
    ("date in another form", invoice_json(due_date="31/10/2026"),
     "due_date", "'31/10/2026' has the wrong form"),
    ("negative price", invoice_json(lines=[_line(net_price="-5")]),
     "lines[1].net_price", "must not be negative"),
    ("unknown VAT category", invoice_json(lines=[_line(vat_category="X")]),
     "lines[1].vat_category", "'X' is not allowed"),
    ("exempt without reason", invoice_json(lines=[_line(vat_category="E", vat_rate="0")]),
     "lines[1].vat_exemption_reason", "needs an exemption reason"),
    ("reverse charge for a customer without VAT ID",
     invoice_json(lines=[_line(vat_category="AE", vat_rate="0",
                               vat_exemption_reason="Reverse charge")]),
     "customer.vat_id", "needs the buyer's VAT identifier"),
    ("standard rate 0", invoice_json(lines=[_line(vat_rate="0")]),
     "lines[1].vat_rate", "must be above 0"),
    ("new customer without name",
     invoice_json(customer="NEW") | {"customer": {"number": "NEW",
                                                  "address": {"country_code": "BE"}}},
     "customer.name", "customer NEW is new to Herald, so its name is needed"),
    ("new customer without country",
     invoice_json() | {"customer": {"number": "NEW", "name": "New Ltd"}},
     "customer.address.country_code", "its country_code is needed"),
    ("payable amount that does not add up", invoice_json(expected_payable_amount="120.16"),
     "expected_payable_amount", "states 120.16 but the lines add up to 120.15"),
    ("credit note without the invoice it corrects", invoice_json(type="credit_note"),
     "preceding_invoice", "is missing"),
    ("base quantity 0", invoice_json(lines=[_line(base_quantity="0")]),
     "lines[1].base_quantity", "base quantity must be above zero"),
    ("line amount too large to store",
     invoice_json(lines=[_line(quantity="99999999999999", net_price="99999999")]),
     "lines[1].quantity", "too large to store"),
    ("unknown seller", invoice_json(seller_vat_id="NL000099998B57"),
     "seller_vat_id", "no seller with VAT ID 'NL000099998B57'"),
]


@pytest.mark.parametrize(("document", "field", "words"),
                         [case[1:] for case in BAD_DOCUMENTS],
                         ids=[case[0] for case in BAD_DOCUMENTS])
def test_bad_document_is_refused_naming_file_document_and_field(
        session, seller, write_json, run_import, document, field, words):
    good = invoice_json("INV-0")
    path = write_json([good, document])
    before = row_counts(session)

    result = run_import(path)

    assert result.exit_code == 1
    problems = problem_lines(result)
    assert len(problems) == 1, result.output
    assert problems[0].startswith(f"{path}, document 2 (INV-1), field '{field}': ")
    assert words in problems[0]
    assert row_counts(session) == before


def test_malformed_json_names_line_and_column(seller, write_bytes, run_import):
    path = write_bytes("broken.json", '{"number": "INV-1",\n "lines": [}')

    result = run_import(path)

    assert result.exit_code == 1
    assert problem_lines(result) == [
        f"{path}, line 2, column 12: is not valid JSON (Expecting value)"]


def test_json_that_is_not_utf8_is_refused(seller, write_bytes, run_import):
    text = json.dumps(invoice_json(buyer_reference="Café"), ensure_ascii=False)
    path = write_bytes("latin1.json", text.encode("latin-1"))

    result = run_import(path)

    offset = text.encode("latin-1").index("é".encode("latin-1"))
    assert problem_lines(result) == [
        f"{path}, byte {offset}: is not UTF-8 text; save the file as UTF-8"]


def test_utf8_with_bom_is_read(session, seller, write_bytes, run_import):
    text = json.dumps(invoice_json(buyer_reference="Café"), ensure_ascii=False)
    path = write_bytes("bom.json", b"\xef\xbb\xbf" + text.encode("utf-8"))

    result = run_import(path)

    assert result.exit_code == 0, result.output
    assert invoice(session, "INV-1").buyer_reference == "Café"
