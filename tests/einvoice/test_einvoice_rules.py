"""Wrong input raises InvoiceRuleError with the official rule id and the field path."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from einvoice import (
    AllowanceCharge,
    InvoiceRuleError,
    PaymentMeans,
    VatExemption,
    check,
    compute,
    write_ubl,
)


def _first(doc, rules_dir=None) -> InvoiceRuleError:
    with pytest.raises(InvoiceRuleError) as raised:
        compute(doc, rules_dir=rules_dir)
    return raised.value


def _rules(doc, rules_dir=None) -> set[tuple[str, str]]:
    return {(problem.rule, problem.field) for problem in check(doc, rules_dir)}


def test_valid_document_has_no_problem(make_document, rules_dir):
    assert check(compute(make_document()), rules_dir) == []


def test_negative_net_price(make_document, make_line):
    error = _first(make_document(lines=[make_line(1), make_line(2, net_price=D("-5"))]))
    assert (error.rule, error.field) == ("BR-27", "lines[1].net_price")
    assert "negative quantity" in error.message


def test_unknown_vat_category(make_document, make_line, rules_dir):
    error = _first(make_document(lines=[make_line(1, vat_category="X")]), rules_dir)
    assert (error.rule, error.field) == ("BR-CL-18", "lines[0].vat_category")


def test_unknown_vat_category_on_document_allowance(make_document):
    doc = make_document(
        allowances_charges=[
            AllowanceCharge(
                is_charge=False, amount=D("1"), reason="x", vat_category="X", vat_rate=D(0)
            )
        ]
    )
    assert ("BR-CL-17", "allowances_charges[0].vat_category") in _rules(doc)


def test_exempt_without_reason(make_document, make_line):
    doc = make_document(lines=[make_line(1), make_line(2, vat_category="E", vat_rate=D("0"))])
    error = _first(doc)
    assert (error.rule, error.field) == ("BR-E-10", "vat_exemptions['E']")
    assert "VatExemption" in error.message
    doc.vat_exemptions["E"] = VatExemption(code="VATEX-EU-132-1F")
    assert check(compute(doc)) == []


def test_exempt_with_rate(make_document, make_line):
    doc = make_document(
        lines=[make_line(vat_category="E", vat_rate=D("25"))],
        vat_exemptions={"E": VatExemption(reason="x")},
    )
    assert ("BR-E-05", "lines[0].vat_rate") in _rules(doc)


def test_standard_rate_zero(make_document, make_line):
    error = _first(make_document(lines=[make_line(vat_rate=D("0"))]))
    assert (error.rule, error.field) == ("BR-S-05", "lines[0].vat_rate")


def test_standard_rated_allowance_without_rate(make_document):
    doc = make_document(
        allowances_charges=[
            AllowanceCharge(is_charge=True, amount=D("5"), reason="Freight", vat_category="S")
        ]
    )
    assert ("BR-S-07", "allowances_charges[0].vat_rate") in _rules(doc)


def test_standard_rate_needs_seller_vat_id(make_document):
    doc = make_document()
    doc.seller.vat_id = None
    assert ("BR-S-02", "seller.vat_id") in _rules(doc)


def test_category_o_with_rate_and_vat_ids(make_document, make_line):
    doc = make_document(
        lines=[make_line(vat_category="O", vat_rate=D("0"))],
        vat_exemptions={"O": VatExemption(reason="Outside scope")},
    )
    assert {("BR-O-05", "lines[0].vat_rate"), ("BR-O-02", "seller.vat_id")} <= _rules(doc)


def test_category_o_cannot_mix(make_document, make_line):
    doc = make_document(
        lines=[make_line(1), make_line(2, vat_category="O", vat_rate=None)],
        vat_exemptions={"O": VatExemption(reason="Outside scope")},
    )
    assert "BR-O-11" in {p.rule for p in check(doc)}


def test_reason_forbidden_for_standard(make_document):
    doc = make_document(vat_exemptions={"S": VatExemption(reason="nope")})
    assert ("BR-S-10", "vat_exemptions['S']") in _rules(doc)


def test_intra_community_needs_delivery(make_document, make_line):
    doc = make_document(
        lines=[make_line(vat_category="K", vat_rate=D("0"))],
        vat_exemptions={"K": VatExemption(code="VATEX-EU-IC")},
    )
    assert {"BR-IC-11", "BR-IC-12"} <= {p.rule for p in check(doc)}


@pytest.mark.parametrize("base", [D("0"), D("-1")])
def test_base_quantity_must_be_positive(make_document, make_line, base):
    error = _first(make_document(lines=[make_line(base_quantity=base)]))
    assert (error.rule, error.field) == ("PEPPOL-EN16931-R121", "lines[0].base_quantity")


def test_unit_code_not_in_rec20(make_document, make_line, rules_dir):
    error = _first(make_document(lines=[make_line(unit_code="HRS")]), rules_dir)
    assert (error.rule, error.field) == ("BR-CL-23", "lines[0].unit_code")


def test_unit_code_pattern_without_rules(make_document, make_line, monkeypatch):
    monkeypatch.delenv("EINVOICE_RULES_DIR", raising=False)
    error = _first(make_document(lines=[make_line(unit_code="hours")]))
    assert (error.rule, error.field) == ("BR-CL-23", "lines[0].unit_code")


def test_missing_currency(make_document):
    error = _first(make_document(currency=""))
    assert (error.rule, error.field) == ("BR-05", "currency")


def test_unknown_currency(make_document, rules_dir):
    error = _first(make_document(currency="EUX"), rules_dir)
    assert (error.rule, error.field) == ("BR-CL-04", "currency")


def test_tax_currency_equal_to_currency(make_document):
    assert ("PEPPOL-EN16931-R005", "tax_currency") in _rules(make_document(tax_currency="EUR"))


def test_tax_currency_needs_accounting_total(make_document):
    doc = compute(make_document(tax_currency="SEK"))
    assert ("BR-53", "totals.tax_total_accounting") in _rules(doc)


def test_missing_buyer_reference_and_order(make_document):
    assert ("PEPPOL-EN16931-R003", "buyer_reference") in _rules(make_document(buyer_reference=None))


def test_no_lines(make_document):
    assert ("BR-16", "lines") in _rules(make_document(lines=[]))


def test_seller_without_endpoint_scheme(make_document):
    doc = make_document()
    doc.seller.endpoint_scheme = None
    assert ("BR-62", "seller.endpoint_scheme") in _rules(doc)


def test_allowance_needs_amount_and_reason(make_document, make_line):
    doc = make_document(
        lines=[make_line(allowances_charges=[AllowanceCharge(is_charge=False, percentage=D("5"))])],
    )
    assert {
        ("BR-41", "lines[0].allowances_charges[0].amount"),
        ("PEPPOL-EN16931-R041", "lines[0].allowances_charges[0].base_amount"),
        ("BR-42", "lines[0].allowances_charges[0].reason"),
    } <= _rules(doc)


def test_direct_debit_needs_mandate(make_document):
    doc = make_document(payment_means=[PaymentMeans(code="59", creditor_id="BE12ZZZ0123456789")])
    assert ("PEPPOL-EN16931-R061", "payment_means[0].mandate_reference") in _rules(doc)


def test_check_returns_all_problems_not_just_the_first(make_document, make_line):
    doc = make_document(
        currency="",
        lines=[
            make_line(1, net_price=D("-1")),
            make_line(2, base_quantity=D("0")),
            make_line(3, vat_rate=D("0")),
        ],
    )
    rules = [p.rule for p in check(doc)]
    assert rules[:1] == ["BR-05"]
    assert {"BR-27", "PEPPOL-EN16931-R121", "BR-S-05"} <= set(rules)


def test_given_amounts_must_agree(make_document):
    doc = compute(make_document())
    doc.lines[0].net_amount = D("100.50")
    doc.vat_breakdown[0].tax_amount = D("21.01")
    doc.totals.tax_inclusive = D("121.10")
    assert {
        ("PEPPOL-EN16931-R120", "lines[0].net_amount"),
        ("BR-S-09", "vat_breakdown[0].tax_amount"),
        ("BR-CO-15", "totals.tax_inclusive"),
    } <= _rules(doc)


def test_amounts_with_three_decimals(make_document):
    doc = compute(make_document())
    doc.vat_breakdown[0].tax_amount = D("21.000")
    assert ("BR-DEC-20", "vat_breakdown[0].tax_amount") in _rules(doc)


def test_writer_refuses_invalid_document(make_document, make_line):
    with pytest.raises(InvoiceRuleError) as raised:
        write_ubl(make_document(lines=[make_line(net_price=D("-1"))]))
    assert raised.value.rule == "BR-27"
    doc = compute(make_document())
    doc.totals.payable = D("1")
    with pytest.raises(InvoiceRuleError) as raised:
        write_ubl(doc)
    assert (raised.value.rule, raised.value.field) == ("BR-CO-16", "totals.payable")


def test_error_message_and_attributes():
    error = InvoiceRuleError("BR-E-10", "vat_exemptions['E']", "give a reason")
    assert str(error) == "[BR-E-10] vat_exemptions['E']: give a reason"
    assert isinstance(error, ValueError)


def test_payment_means_code_not_in_uncl4461(make_document, rules_dir):
    doc = make_document(payment_means=[PaymentMeans(code="99", iban="BE71096123456769")])
    assert ("BR-CL-16", "payment_means[0].code") in _rules(doc, rules_dir)
