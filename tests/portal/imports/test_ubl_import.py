"""Importing UBL 2.1 Invoice and CreditNote files (portal/imports/ubl_format.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.models import Customer, DocumentKind, Invoice
from tests.factories import make_organisation
from tests.portal.imports.conftest import (
    BASE_EXAMPLE_SELLER_VAT,
    BROKEN_EXAMPLES,
    EXAMPLES,
    problem_lines,
    row_counts,
)

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="einvoice rules not available")


@pytest.fixture
def gb_seller(session):
    """The seller of the official Peppol examples (AccountingSupplierParty's VAT ID)."""
    return make_organisation(session, legal_name="SupplierOfficialName Ltd",
                             vat_id=BASE_EXAMPLE_SELLER_VAT, country_code="GB")


def _stored(session, kind: DocumentKind) -> Invoice:
    session.expire_all()
    return session.scalars(sa.select(Invoice).where(Invoice.kind == kind)).one()


def test_official_base_example_is_imported(session, gb_seller, run_import):
    result = run_import(EXAMPLES / "base-example.xml")

    assert result.exit_code == 0, result.output
    stored = _stored(session, DocumentKind.INVOICE)
    assert (stored.number, stored.organisation_id, stored.source) == ("Snippet1", gb_seller.id,
                                                                      "ubl")
    assert str(stored.issue_date) == "2017-11-13"
    # 7 x 400 - 3 x 500 = 1300; + 25 charge = 1325; 25 % VAT = 331.25
    assert [line.net_amount for line in stored.lines] == [Decimal("2800.00"),
                                                          Decimal("-1500.00")]
    assert stored.line_extension_amount == Decimal("1300.00")
    assert stored.charge_total == Decimal("25.00")
    assert stored.tax_exclusive_amount == Decimal("1325.00")
    assert stored.tax_amount == Decimal("331.25")
    assert stored.payable_amount == Decimal("1656.25")
    # the buyer is matched by cac:PartyIdentification/cbc:ID and created from the file
    assert stored.customer.number == "FR23342"
    assert stored.customer.vat_id == "SE4598375937"
    assert stored.customer.country_code == "SE"


def test_official_credit_note_is_imported(session, gb_seller, run_import):
    result = run_import(EXAMPLES / "base-creditnote-correction.xml")

    assert result.exit_code == 0, result.output
    stored = _stored(session, DocumentKind.CREDIT_NOTE)
    assert stored.type_code == "381"
    assert stored.preceding_invoice_number == "Snippet1"
    assert stored.payable_amount == Decimal("1656.25")


def test_prepaid_amount_is_taken_into_account(session, gb_seller, run_import):
    # Allowance-example.xml states PrepaidAmount 1000: 7125 due in total, 6125 still to pay
    result = run_import(EXAMPLES / "Allowance-example.xml")

    assert result.exit_code == 0, result.output
    stored = _stored(session, DocumentKind.INVOICE)
    assert stored.tax_inclusive_amount == Decimal("7125.00")
    assert stored.prepaid_amount == Decimal("1000.00")
    assert stored.payable_amount == Decimal("6125.00")


def test_buyer_known_by_its_identifier_is_not_created_again(session, gb_seller, run_import):
    session.add(Customer(organisation_id=gb_seller.id, number="FR23342", name="Known buyer",
                         kind="business", country_code="SE"))
    session.flush()

    result = run_import(EXAMPLES / "base-example.xml")

    assert result.exit_code == 0, result.output
    assert _stored(session, DocumentKind.INVOICE).customer.name == "Known buyer"
    assert session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 1


def test_file_that_is_not_xml_is_refused(gb_seller, write_bytes, run_import):
    path = write_bytes("invoice.xml", "not xml")

    result = run_import(path)

    assert result.exit_code == 1
    [problem] = problem_lines(result)
    assert problem.startswith(f"{path}, /: not well-formed XML")


def test_broken_total_is_refused_naming_the_elements(session, gb_seller, run_import):
    path = BROKEN_EXAMPLES / "01-wrong-total.xml"
    before = row_counts(session)

    result = run_import(path)

    assert result.exit_code == 1
    assert problem_lines(result) == [
        f"{path}, /Invoice/cac:LegalMonetaryTotal/cbc:{element}: states 1656.35 but the lines "
        "add up to 1656.25; check the lines, allowances and VAT rates"
        for element in ("TaxInclusiveAmount", "PayableAmount")]
    assert row_counts(session) == before


def test_unknown_seller_is_refused(session, run_import):
    make_organisation(session)  # BE0123456749, not the example's seller

    result = run_import(EXAMPLES / "base-example.xml")

    assert result.exit_code == 1
    assert problem_lines(result) == [
        f"{EXAMPLES / 'base-example.xml'}, /Invoice/cac:AccountingSupplierParty, field "
        f"'seller_vat_id': no seller with VAT ID '{BASE_EXAMPLE_SELLER_VAT}' is set up in "
        "Herald; check the VAT ID or set the seller up first"]


def _base_example_buyer_without(*elements: str) -> str:
    # the example's buyer EndpointID equals its PartyIdentification; make them differ
    xml = (EXAMPLES / "base-example.xml").read_text().replace(
        ">FR23342</cbc:EndpointID>", ">FR99999</cbc:EndpointID>")
    buyer_start = xml.index("<cac:AccountingCustomerParty>")
    buyer_end = xml.index("</cac:AccountingCustomerParty>")
    buyer = xml[buyer_start:buyer_end]
    for element in elements:
        start = buyer.index(f"<{element}")
        end = buyer.index(f"</{element}>", start) + len(f"</{element}>")
        buyer = buyer[:start] + buyer[end:]
    return xml[:buyer_start] + buyer + xml[buyer_end:]


@pytest.mark.parametrize(("removed", "customer_number"), [
    ((), "FR23342"),  # cac:PartyIdentification/cbc:ID
    (("cac:PartyIdentification",), "SE4598375937"),  # else the VAT ID
    (("cac:PartyIdentification", "cac:PartyTaxScheme"), "FR99999"),  # else cbc:EndpointID
])
def test_customer_number_comes_from_identifier_then_vat_id_then_endpoint(
        session, gb_seller, write_bytes, run_import, removed, customer_number):
    path = write_bytes("invoice.xml", _base_example_buyer_without(*removed))

    result = run_import(path)

    assert result.exit_code == 0, result.output
    assert _stored(session, DocumentKind.INVOICE).customer.number == customer_number
