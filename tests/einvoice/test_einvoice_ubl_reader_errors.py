"""The UBL reader refuses bad input with UblReadError pointing at the element."""

from __future__ import annotations

import re

import pytest

from einvoice import UblReadError, read_ubl


@pytest.fixture
def base_xml(rules_dir) -> str:
    return (rules_dir / "examples" / "base-example.xml").read_text(encoding="utf-8")


def _error(data: bytes) -> UblReadError:
    with pytest.raises(UblReadError) as raised:
        read_ubl(data)
    return raised.value


@pytest.mark.parametrize("data", [b"", b"not xml at all", b"<Invoice>", b"\x00\x01"])
def test_not_xml(data):
    error = _error(data)
    assert error.element == "/"
    assert "XML" in error.message or "empty" in error.message


def test_wrong_root_element():
    error = _error(b'<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"/>')
    assert error.element == "/Order"
    assert "neither a UBL 2.1 Invoice nor CreditNote" in error.message


def test_invoice_without_namespace_is_refused():
    assert _error(b"<Invoice/>").element == "/Invoice"


@pytest.mark.parametrize(
    ("remove", "element", "field"),
    [
        (r"<cbc:ID>Snippet1</cbc:ID>", "/Invoice/cbc:ID", "number"),
        (r"<cbc:IssueDate>2017-11-13</cbc:IssueDate>", "/Invoice/cbc:IssueDate", "issue_date"),
        (
            r"<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>",
            "/Invoice/cbc:DocumentCurrencyCode",
            "currency",
        ),
        (
            r"<cbc:RegistrationName>SupplierOfficialName Ltd</cbc:RegistrationName>",
            "/Invoice/cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName",
            "seller.name",
        ),
        (
            r"<cbc:RegistrationName>Buyer Official Name</cbc:RegistrationName>",
            "/Invoice/cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName",
            "buyer.name",
        ),
        (r"(?s)<cac:InvoiceLine>.*</cac:InvoiceLine>", "/Invoice/cac:InvoiceLine", "lines"),
    ],
)
def test_missing_mandatory_element(base_xml, remove, element, field):
    broken, count = re.subn(remove, "", base_xml, count=1)
    assert count == 1
    error = _error(broken.encode())
    assert (error.element, error.field) == (element, field)
    assert error.message.startswith("missing mandatory element")


def test_not_a_number_points_at_the_line(base_xml):
    broken = base_xml.replace(
        '<cbc:InvoicedQuantity unitCode="DAY">-3<', '<cbc:InvoicedQuantity unitCode="DAY">abc<'
    )
    error = _error(broken.encode())
    assert error.element == "/Invoice/cac:InvoiceLine[2]/cbc:InvoicedQuantity"
    assert error.field == "lines[1].quantity"
    assert error.message == "not a number: 'abc'"


@pytest.mark.parametrize("value", ["1e3", "NaN", "Infinity", "1,5", ""])
def test_numbers_must_be_xml_decimals(base_xml, value):
    broken = base_xml.replace(
        '<cbc:PayableAmount currencyID="EUR">1656.25<',
        f'<cbc:PayableAmount currencyID="EUR">{value}<',
    )
    error = _error(broken.encode())
    assert error.element == "/Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount"
    assert error.field == "totals.payable"


def test_bad_date(base_xml):
    error = _error(
        base_xml.replace("<cbc:IssueDate>2017-11-13<", "<cbc:IssueDate>13.11.2017<").encode()
    )
    assert (error.element, error.field) == ("/Invoice/cbc:IssueDate", "issue_date")
    assert error.message == "not a date (YYYY-MM-DD): '13.11.2017'"


def test_bad_charge_indicator(base_xml):
    error = _error(
        base_xml.replace("<cbc:ChargeIndicator>true<", "<cbc:ChargeIndicator>yes<").encode()
    )
    assert error.element == "/Invoice/cac:AllowanceCharge/cbc:ChargeIndicator"
    assert error.field == "allowances_charges[0].is_charge"


def test_xxe_is_not_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    data = (
        f'<?xml version="1.0"?><!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" '
        'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">'
        "<cbc:ID>&xxe;</cbc:ID></Invoice>"
    ).encode()
    error = _error(data)
    assert "TOP-SECRET" not in str(error)
    assert "DOCTYPE" in error.message


def test_billion_laughs_is_refused():
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    data = (
        f'<?xml version="1.0"?><!DOCTYPE Invoice [{entities}]>'
        '<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&lol9;</Invoice>'
    ).encode()
    error = _error(data)
    assert error.element == "/"


def test_str_is_refused():
    assert "expected bytes" in _error("<Invoice/>").message  # type: ignore[arg-type]
