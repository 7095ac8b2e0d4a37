"""Validation with the official XSD and schematron (CEN EN 16931 + Peppol BIS 3.0) via saxonche."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from einvoice import AllowanceCharge, DocumentKind, VatExemption, read_ubl, write_ubl
from einvoice.validation import Finding, validate

pytest.importorskip("saxonche", reason="saxonche is needed to run the compiled schematron")


def _expected(rules_dir: Path) -> dict[str, set[str]]:
    expected = {}
    for raw in (rules_dir / "examples-broken" / "EXPECTED").read_text().splitlines():
        if raw.strip() and not raw.startswith("#"):
            name, *rules = raw.split()
            expected[name] = set(rules)
    return expected


def test_broken_examples_fire_the_expected_rules(rules_dir):
    expected = _expected(rules_dir)
    assert len(expected) == 8
    for name, rules in expected.items():
        findings = validate((rules_dir / "examples-broken" / name).read_bytes(), rules_dir)
        assert rules <= findings.rule_ids("fatal"), (name, findings.rule_ids("fatal"))
        assert not findings.ok


def test_official_examples_have_no_fatal_finding(examples, rules_dir):
    for path in examples:
        findings = validate(path.read_bytes(), rules_dir)
        assert findings.ran == ["xsd", "cen", "peppol"]
        assert findings.fatal == [], (path.name, findings.fatal)


def test_rewritten_examples_have_no_fatal_finding(examples, rules_dir):
    for path in examples:
        written = write_ubl(read_ubl(path.read_bytes()), rules_dir)
        assert validate(written, rules_dir).fatal == [], path.name


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"kind": DocumentKind.CREDIT_NOTE, "preceding_invoices": [("INV-1", None)]},
        {"currency": "USD", "tax_currency": "EUR"},
        {
            "allowances_charges": [
                AllowanceCharge(
                    is_charge=False,
                    percentage=D("5"),
                    base_amount=D("100"),
                    reason="Loyalty",
                    vat_category="S",
                    vat_rate=D("21"),
                )
            ]
        },
    ],
    ids=["invoice", "credit-note", "foreign-currency", "allowance"],
)
def test_writer_output_has_no_fatal_finding(make_document, rules_dir, overrides):
    from einvoice import compute

    doc = compute(make_document(**overrides), tax_exchange_rate=D("0.92"))
    findings = validate(write_ubl(doc, rules_dir), rules_dir)
    assert findings.fatal == []


def test_exempt_and_reverse_charge_output_is_valid(make_document, make_line, rules_dir):
    doc = make_document(
        lines=[
            make_line(1, vat_category="E", vat_rate=D("0")),
            make_line(2),
        ],
        vat_exemptions={"E": VatExemption(code="VATEX-EU-132-1F", reason="Medical care")},
    )
    assert validate(write_ubl(doc, rules_dir), rules_dir).fatal == []
    reverse = make_document(
        lines=[make_line(1, vat_category="AE", vat_rate=D("0"))],
        vat_exemptions={"AE": VatExemption(code="VATEX-EU-AE", reason="Reverse charge")},
    )
    assert validate(write_ubl(reverse, rules_dir), rules_dir).fatal == []


def test_not_xml_is_one_fatal_finding(rules_dir):
    findings = validate(b"<<<", rules_dir)
    assert [(f.severity, f.rule_id, f.source) for f in findings] == [("fatal", "XML", "xml")]


def test_findings_carry_location_and_message(rules_dir):
    findings = validate(
        (rules_dir / "examples-broken" / "01-wrong-total.xml").read_bytes(), rules_dir
    )
    (finding,) = [f for f in findings.fatal if f.rule_id == "BR-CO-15"]
    assert isinstance(finding, Finding) and finding.source == "cen"
    assert finding.message.startswith("[BR-CO-15]")
    assert finding.location.startswith("/")


def test_without_rules_herald_checks_still_run_and_say_so(monkeypatch, rules_dir):
    monkeypatch.delenv("EINVOICE_RULES_DIR", raising=False)
    findings = validate((rules_dir / "examples" / "base-example.xml").read_bytes())
    assert findings.ok and findings.rule_ids() == {"NO-RULES"}
    assert findings.ran == ["herald"]
    assert "not applied" in findings.warnings[0].message
    broken = validate((rules_dir / "examples-broken" / "01-wrong-total.xml").read_bytes())
    assert [(f.rule_id, f.source) for f in broken.fatal] == [("BR-CO-15", "herald")]
    assert broken.fatal[0].hint.startswith("Total with VAT")
