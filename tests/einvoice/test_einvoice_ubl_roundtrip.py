"""UBL writer and reader: official examples round trip, writer output validates against the XSD."""

from __future__ import annotations

import base64
from datetime import date
from decimal import Decimal as D

import pytest
from lxml import etree

from einvoice import (
    Address,
    AllowanceCharge,
    Attachment,
    Delivery,
    DocumentKind,
    Party,
    PaymentMeans,
    VatExemption,
    check,
    compute,
    read_ubl,
    write_ubl,
)
from einvoice.ubl.namespaces import CAC_NS, CBC_NS

NS = {"cac": CAC_NS, "cbc": CBC_NS}


def _xpath(data: bytes, path: str) -> list[str]:
    root = etree.fromstring(data)
    return [
        node if isinstance(node, str) else (node.text or "")
        for node in root.xpath(path, namespaces=NS)
    ]


def test_all_examples_round_trip(examples, rules_dir, xsd):
    assert len(examples) == 10
    for path in examples:
        original = read_ubl(path.read_bytes())
        assert check(original, rules_dir) == [], path.name
        written = write_ubl(original, rules_dir)
        assert xsd(written) == [], path.name
        assert read_ubl(written) == original, path.name


def test_example_values_are_read(examples):
    by_name = {path.name: read_ubl(path.read_bytes()) for path in examples}
    base = by_name["base-example.xml"]
    assert base.number == "Snippet1" and base.issue_date == date(2017, 11, 13)
    assert (
        base.seller.name == "SupplierOfficialName Ltd"
        and base.seller.trading_name == "SupplierTradingName Ltd."
    )
    assert (base.seller.endpoint_id, base.seller.endpoint_scheme) == ("9482348239847239874", "0088")
    assert base.buyer.legal_registration_scheme == "0183"
    assert base.lines[1].quantity == D("-3") and base.lines[1].net_amount == D("-1500")
    assert base.totals.payable == D("1656.25")
    assert base.payment_means[0].iban == "IBAN32423940"
    allowance = by_name["Allowance-example.xml"]
    assert allowance.tax_currency == "SEK" and allowance.totals.tax_total_accounting == D("9324.00")
    assert allowance.lines[0].gross_price == D("450") and allowance.lines[0].price_discount == D(
        "40"
    )
    assert allowance.lines[1].base_quantity == D("2")
    assert allowance.vat_exemptions == {"E": VatExemption(reason="Reason for tax exempt")}
    assert allowance.attachments[0].document_type_code == "130"
    credit = by_name["base-creditnote-correction.xml"]
    assert credit.kind is DocumentKind.CREDIT_NOTE and credit.preceding_invoices == [
        ("Snippet1", None)
    ]
    assert by_name["vat-category-O.xml"].vat_breakdown[0].rate is None


def test_written_invoice_is_schema_valid_and_in_order(make_document, xsd):
    doc = make_document(
        notes=["Thank you"],
        tax_point_date=date(2024, 3, 1),
        accounting_cost="4025",
        period_start=date(2024, 2, 1),
        period_end=date(2024, 2, 29),
        order_reference="PO-1",
        sales_order_reference="SO-1",
        contract_reference="C-1",
        project_reference="PRJ-1",
        despatch_reference="D-1",
        receiving_reference="R-1",
        tender_reference="T-1",
        payee=Party(
            name="Factor NV", identifiers=[("P-1", None)], legal_registration_id="0999999999"
        ),
        tax_representative=Party(
            name="Rep BV",
            vat_id="NL999999999B01",
            address=Address(country_code="NL", city="Utrecht"),
        ),
        delivery=Delivery(
            date=date(2024, 2, 20),
            location_id="5412345000013",
            location_scheme="0088",
            address=Address(lines=["Dock 4", "Gate B", "Bay 7"], city="Antwerp", country_code="BE"),
            party_name="Warehouse",
        ),
        allowances_charges=[
            AllowanceCharge(
                is_charge=True, amount=D("10"), reason="Freight", vat_category="S", vat_rate=D("21")
            )
        ],
    )
    written = write_ubl(doc)
    assert xsd(written) == []
    assert _xpath(written, "/*/cac:OrderReference/cbc:SalesOrderID") == ["SO-1"]
    assert _xpath(written, "/*/cac:ProjectReference/cbc:ID") == ["PRJ-1"]
    assert _xpath(
        written, "/*/cac:Delivery/cac:DeliveryLocation/cac:Address/cac:AddressLine/cbc:Line"
    ) == ["Bay 7"]
    assert _xpath(written, "/*/cac:LegalMonetaryTotal/cbc:PayableAmount/@currencyID") == ["EUR"]
    assert _xpath(written, "/*/cac:LegalMonetaryTotal/cbc:PayableAmount") == ["133.10"]
    assert read_ubl(written) == compute(doc)


def test_credit_note_with_preceding_invoice(make_document, xsd):
    doc = make_document(
        kind=DocumentKind.CREDIT_NOTE,
        number="CN-1",
        preceding_invoices=[("INV-2024-0001", date(2024, 3, 1))],
        project_reference="PRJ-9",
    )
    written = write_ubl(doc)
    assert xsd(written) == []
    root = etree.fromstring(written)
    assert etree.QName(root).localname == "CreditNote"
    assert _xpath(written, "/*/cbc:CreditNoteTypeCode") == ["381"]
    assert _xpath(written, "/*/cac:CreditNoteLine/cbc:CreditedQuantity/@unitCode") == ["HUR"]
    assert _xpath(written, "/*/cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID") == [
        "INV-2024-0001"
    ]
    assert _xpath(written, "/*/cac:PaymentMeans/cbc:PaymentDueDate") == ["2024-03-31"]
    assert _xpath(
        written, "/*/cac:AdditionalDocumentReference[cbc:DocumentTypeCode='50']/cbc:ID"
    ) == ["PRJ-9"]
    assert not _xpath(written, "//cac:InvoiceLine")
    back = read_ubl(written)
    assert back == compute(doc)
    assert back.due_date == date(2024, 3, 31) and back.project_reference == "PRJ-9"


def test_foreign_currency_with_tax_currency(make_document, xsd):
    doc = compute(make_document(currency="USD", tax_currency="EUR"), tax_exchange_rate=D("0.9"))
    written = write_ubl(doc)
    assert xsd(written) == []
    assert _xpath(written, "/*/cbc:TaxCurrencyCode") == ["EUR"]
    assert _xpath(written, "/*/cac:TaxTotal/cbc:TaxAmount/@currencyID") == ["USD", "EUR"]
    assert _xpath(written, "/*/cac:TaxTotal[not(cac:TaxSubtotal)]/cbc:TaxAmount") == ["18.90"]
    assert read_ubl(written) == doc


def test_embedded_attachment(make_document, xsd):
    pdf = b"%PDF-1.4 tiny"
    doc = make_document(
        attachments=[
            Attachment(
                id="timesheet",
                description="Timesheet",
                mime_code="application/pdf",
                filename="ts.pdf",
                content=pdf,
            ),
            Attachment(id="spec", uri="https://example.com/spec"),
        ]
    )
    written = write_ubl(doc)
    assert xsd(written) == []
    path = "/*/cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject"
    assert _xpath(written, path) == [base64.b64encode(pdf).decode()]
    assert _xpath(written, path + "/@mimeCode") == ["application/pdf"]
    assert _xpath(written, path + "/@filename") == ["ts.pdf"]
    assert read_ubl(written).attachments == doc.attachments


def test_payment_means_kinds_round_trip(make_document, xsd):
    doc = make_document(
        payment_means=[
            PaymentMeans(
                code="58",
                text="SEPA credit transfer",
                iban="BE71096123456769",
                account_name="Herald",
                bic="GEBABEBB",
            ),
            PaymentMeans(
                code="59",
                mandate_reference="MANDATE-1",
                creditor_id="BE12ZZZ0123456789",
                debited_account="NL91ABNA0417164300",
            ),
            PaymentMeans(code="48", card_pan="1234", card_network="VISA", card_holder="J Doe"),
        ]
    )
    written = write_ubl(doc)
    assert xsd(written) == []
    assert _xpath(
        written, "/*/cac:AccountingSupplierParty//cac:PartyIdentification/cbc:ID[@schemeID='SEPA']"
    ) == ["BE12ZZZ0123456789"]
    assert read_ubl(written) == compute(doc)


def test_line_details_round_trip(make_document, make_line, xsd):
    line = make_line(
        quantity=D("3"),
        net_price=D("9.99"),
        gross_price=D("12.49"),
        price_discount=D("2.50"),
        base_quantity=D("1"),
        description="Blue widgets",
        seller_item_id="W-1",
        buyer_item_id="B-1",
        standard_item_id="05412345000013",
        standard_item_scheme="0160",
        classifications=[("43211503", "STI"), ("9999", "SRV")],
        origin_country="DE",
        properties=[("Colour", "Blue")],
        allowances_charges=[
            AllowanceCharge(is_charge=False, amount=D("1.00"), reason_code="95", reason="Discount")
        ],
        note="Rush order",
        period_start=date(2024, 2, 1),
        period_end=date(2024, 2, 2),
        order_line_reference="10",
        accounting_cost="CC-1",
        object_id="SN-42",
        object_scheme="AAB",
        unit_code="C62",
    )
    doc = make_document(lines=[line])
    written = write_ubl(doc)
    assert xsd(written) == []
    back = read_ubl(written)
    assert back == compute(doc)
    assert back.lines[0].net_amount == D("28.97")  # 3 × 9.99 − 1.00


def test_500_lines_write_and_read(make_document, make_line, xsd):
    doc = make_document(
        lines=[make_line(i, quantity=D("1.5"), net_price=D("3.33")) for i in range(1, 501)]
    )
    written = write_ubl(doc)
    assert xsd(written) == []
    back = read_ubl(written)
    assert len(back.lines) == 500
    assert back.totals.line_extension == D("2500.00")  # 500 × round(4.995) = 500 × 5.00
    assert back == compute(doc)


def test_numbers_are_written_without_exponent(make_document, make_line):
    doc = make_document(lines=[make_line(quantity=D("1E+1"), net_price=D("1E-2"))])
    written = write_ubl(doc)
    assert _xpath(written, "//cac:InvoiceLine/cbc:InvoicedQuantity") == ["10"]
    assert _xpath(written, "//cac:Price/cbc:PriceAmount") == ["0.01"]
    assert b"E+" not in written and b"E-" not in written


@pytest.mark.parametrize("category", ["E", "Z", "AE", "G"])
def test_zero_rated_categories_write(make_document, make_line, xsd, category):
    doc = make_document(
        lines=[make_line(vat_category=category, vat_rate=D("0"))],
        vat_exemptions={
            category: VatExemption(
                code="VATEX-EU-AE" if category == "AE" else None, reason="Reason"
            )
        }
        if category != "Z"
        else {},
    )
    written = write_ubl(doc)
    assert xsd(written) == []
    assert _xpath(written, "/*/cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID") == [category]
