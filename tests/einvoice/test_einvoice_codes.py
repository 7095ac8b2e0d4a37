"""Code lists are read from the official CEN schematron, not copied into the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from einvoice import codes


def test_unit_codes_from_schematron(rules_dir):
    units = codes.unit_codes(rules_dir)
    assert {"C62", "HUR", "DAY", "KGM", "LTR", "H87"} <= units
    assert "HRS" not in units and "" not in units
    assert len(units) > 1500


def test_currency_codes_from_schematron(rules_dir):
    currencies = codes.currency_codes(rules_dir)
    assert {"EUR", "USD", "SEK", "NOK", "GBP"} <= currencies
    assert "EUX" not in currencies
    assert all(len(code) == 3 for code in currencies)


def test_vat_categories_and_type_codes(rules_dir):
    assert codes.vat_categories(rules_dir) >= codes.KNOWN_VAT_CATEGORIES
    assert "381" in codes.document_type_codes(True, rules_dir)
    assert "380" in codes.document_type_codes(False, rules_dir)
    assert "381" not in codes.document_type_codes(False, rules_dir)


def test_lists_are_cached(rules_dir):
    assert codes.unit_codes(rules_dir) is codes.unit_codes(rules_dir)


def test_without_rules_folder(monkeypatch):
    monkeypatch.delenv("EINVOICE_RULES_DIR", raising=False)
    assert codes.unit_codes(None) is None
    assert codes.currency_codes(None) is None
    assert codes.vat_categories(None) == codes.KNOWN_VAT_CATEGORIES


def test_environment_variable_names_the_folder(monkeypatch, rules_dir):
    monkeypatch.setenv("EINVOICE_RULES_DIR", str(rules_dir))
    assert "C62" in codes.unit_codes()


def test_folder_without_schematron(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        codes.unit_codes(tmp_path)
