"""EN 16931 arithmetic: line amounts, allowances/charges, VAT breakdown per category, totals."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from einvoice import AllowanceCharge, DocumentKind, Totals, VatExemption, compute
from einvoice.calc import line_net_amount


def test_line_net_amount_uses_base_quantity_and_line_allowances(make_line):
    line = make_line(
        quantity=D("10"),
        net_price=D("200"),
        base_quantity=D("2"),
        allowances_charges=[
            AllowanceCharge(is_charge=False, amount=D("101"), reason="Discount"),
            AllowanceCharge(
                is_charge=True, percentage=D("1"), base_amount=D("100"), reason="Cleaning"
            ),
        ],
    )
    # 10 × 200 / 2 − 101 + 1
    assert line_net_amount(line) == D("900.00")


def test_line_net_amount_rounds_half_up(make_line):
    assert line_net_amount(make_line(quantity=D("1"), net_price=D("0.125"))) == D("0.13")
    assert line_net_amount(make_line(quantity=D("-1"), net_price=D("0.125"))) == D("-0.13")
    assert line_net_amount(make_line(quantity=D("3"), net_price=D("0.3333"))) == D("1.00")


def test_three_lines_of_033_at_21_percent(make_document, make_line):
    lines = [make_line(i, quantity=D("1"), net_price=D("0.33")) for i in (1, 2, 3)]
    doc = compute(make_document(lines=lines))
    assert [(v.category, v.rate, v.taxable_amount, v.tax_amount) for v in doc.vat_breakdown] == [
        ("S", D("21"), D("0.99"), D("0.21"))
    ]
    assert doc.totals.tax_inclusive == D("1.20")


def test_vat_is_rounded_on_the_category_total_not_per_line(make_document, make_line):
    # Per line: 1.05 × 10 % = 0.105 → 0.11, three lines 0.33.
    # On the category total: 3.15 × 10 % = 0.315 → 0.32.
    lines = [
        make_line(i, quantity=D("1"), net_price=D("1.05"), vat_rate=D("10")) for i in (1, 2, 3)
    ]
    doc = compute(make_document(lines=lines))
    assert doc.vat_breakdown[0].tax_amount == D("0.32")
    assert doc.totals.tax_total == D("0.32")
    assert doc.totals.payable == D("3.47")


def test_rates_are_grouped_per_category_and_rate(make_document, make_line):
    lines = [
        make_line(1, net_price=D("10")),
        make_line(2, net_price=D("10"), vat_rate=D("6")),
        make_line(3, net_price=D("5"), vat_rate=D("21.0")),  # same rate written differently
    ]
    doc = compute(make_document(lines=lines))
    assert [(v.rate, v.taxable_amount, v.tax_amount) for v in doc.vat_breakdown] == [
        (D("21"), D("30.00"), D("6.30")),
        (D("6"), D("20.00"), D("1.20")),
    ]
    assert doc.totals.tax_total == D("7.50")
    assert doc.totals.tax_inclusive == D("57.50")


@pytest.mark.parametrize(
    ("category", "rate", "exemption", "expected_tax"),
    [
        ("S", D("25"), None, D("25.00")),
        ("Z", D("0"), None, D("0.00")),
        ("E", D("0"), VatExemption(reason="Exempt: medical care"), D("0.00")),
        ("AE", D("0"), VatExemption(code="VATEX-EU-AE", reason="Reverse charge"), D("0.00")),
        ("K", D("0"), VatExemption(code="VATEX-EU-IC"), D("0.00")),
        ("G", D("0"), VatExemption(code="VATEX-EU-G"), D("0.00")),
        ("L", D("7"), None, D("7.00")),
        ("M", D("4"), None, D("4.00")),
    ],
)
def test_each_vat_category(make_document, make_line, category, rate, exemption, expected_tax):
    from einvoice import Address, Delivery

    doc = make_document(
        lines=[
            make_line(quantity=D("1"), net_price=D("100"), vat_category=category, vat_rate=rate)
        ],
        vat_exemptions={category: exemption} if exemption else {},
        delivery=Delivery(date=make_document().issue_date, address=Address(country_code="NL")),
    )
    result = compute(doc)
    (entry,) = result.vat_breakdown
    assert (entry.category, entry.rate, entry.taxable_amount, entry.tax_amount) == (
        category,
        rate,
        D("100.00"),
        expected_tax,
    )
    if exemption:
        assert (entry.exemption_reason, entry.exemption_reason_code) == (
            exemption.reason,
            exemption.code,
        )
    assert result.totals.payable == D("100.00") + expected_tax


def test_category_o_has_no_rate_and_no_vat(make_document, make_line):
    doc = make_document(
        lines=[make_line(net_price=D("40"), vat_category="O", vat_rate=None)],
        vat_exemptions={"O": VatExemption(reason="Not subject to VAT")},
    )
    doc.seller.vat_id = None
    doc.buyer.vat_id = None
    doc.seller.tax_registration_id = None
    result = compute(doc)
    (entry,) = result.vat_breakdown
    assert (entry.category, entry.rate, entry.tax_amount, entry.exemption_reason) == (
        "O",
        None,
        D("0.00"),
        "Not subject to VAT",
    )
    assert result.totals.payable == D("80.00")


def test_document_allowances_and_charges(make_document, make_line):
    doc = make_document(
        lines=[
            make_line(1, quantity=D("10"), net_price=D("100")),
            make_line(2, quantity=D("1"), net_price=D("50"), vat_rate=D("6")),
        ],
        allowances_charges=[
            AllowanceCharge(
                is_charge=False,
                percentage=D("10"),
                base_amount=D("1000"),
                reason="Volume discount",
                vat_category="S",
                vat_rate=D("21"),
            ),
            AllowanceCharge(
                is_charge=True,
                amount=D("15.50"),
                reason_code="FC",
                reason="Freight",
                vat_category="S",
                vat_rate=D("21"),
            ),
        ],
    )
    result = compute(doc)
    assert result.allowances_charges[0].amount == D("100.00")
    s21, s6 = result.vat_breakdown
    assert (s21.taxable_amount, s21.tax_amount) == (D("915.50"), D("192.26"))  # 1000 − 100 + 15.50
    assert (s6.taxable_amount, s6.tax_amount) == (D("50.00"), D("3.00"))
    t = result.totals
    assert (t.line_extension, t.allowance_total, t.charge_total) == (
        D("1050.00"),
        D("100.00"),
        D("15.50"),
    )
    assert (t.tax_exclusive, t.tax_total, t.tax_inclusive, t.payable) == (
        D("965.50"),
        D("195.26"),
        D("1160.76"),
        D("1160.76"),
    )


def test_no_document_allowance_means_no_allowance_total(make_document):
    totals = compute(make_document()).totals
    assert totals.allowance_total is None and totals.charge_total is None


def test_prepaid_and_rounding_are_kept(make_document):
    doc = make_document(
        totals=Totals(
            line_extension=D(0),
            tax_exclusive=D(0),
            tax_total=D(0),
            tax_inclusive=D(0),
            payable=D(0),
            prepaid=D("21.00"),
            rounding=D("0.01"),
        )
    )
    totals = compute(doc).totals
    assert totals.tax_inclusive == D("121.00")
    assert totals.payable == D("100.01")


def test_foreign_currency_with_tax_currency(make_document):
    doc = make_document(currency="USD", tax_currency="EUR")
    result = compute(doc, tax_exchange_rate=D("0.9133"))
    assert result.totals.tax_total == D("21.00")
    assert result.totals.tax_total_accounting == D("19.18")  # 21.00 × 0.9133 = 19.1793


def test_compute_does_not_change_its_input(make_document):
    doc = make_document()
    compute(doc)
    assert doc.totals is None and doc.vat_breakdown == [] and doc.lines[0].net_amount is None


def test_one_line_and_500_lines(make_document, make_line):
    one = compute(make_document())
    assert one.totals.payable == D("121.00")
    lines = [make_line(i, quantity=D("3"), net_price=D("0.07")) for i in range(1, 501)]
    many = compute(make_document(lines=lines))
    assert len(many.lines) == 500
    assert many.totals.line_extension == D("105.00")  # 500 × 0.21
    assert many.vat_breakdown[0].tax_amount == D("22.05")
    assert many.totals.payable == D("127.05")


def test_credit_note_computes_like_an_invoice(make_document):
    doc = compute(
        make_document(kind=DocumentKind.CREDIT_NOTE, preceding_invoices=[("INV-1", None)])
    )
    assert doc.type_code == "381"
    assert doc.totals.payable == D("121.00")
