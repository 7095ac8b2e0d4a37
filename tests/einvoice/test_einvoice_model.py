"""Model defaults and Decimal helpers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from einvoice import Document, DocumentKind, Party
from einvoice.model import PEPPOL_CUSTOMIZATION_ID, PEPPOL_PROFILE_ID
from einvoice.money import format_decimal, round_money, to_decimal


def _doc(**kw) -> Document:
    return Document(
        number="1",
        issue_date=date(2024, 1, 1),
        currency="EUR",
        seller=Party(name="S"),
        buyer=Party(name="B"),
        **kw,
    )


def test_defaults():
    doc = _doc()
    assert doc.kind is DocumentKind.INVOICE and doc.type_code == "380"
    assert (doc.customization_id, doc.profile_id) == (PEPPOL_CUSTOMIZATION_ID, PEPPOL_PROFILE_ID)
    assert doc.lines == [] and doc.notes == [] and doc.totals is None


def test_credit_note_default_type_code():
    assert _doc(kind="credit_note").type_code == "381"
    assert _doc(kind=DocumentKind.CREDIT_NOTE, type_code="396").type_code == "396"


def test_lists_are_not_shared():
    first, second = _doc(), _doc()
    first.notes.append("x")
    assert second.notes == []


def test_slots_reject_unknown_attributes():
    with pytest.raises(AttributeError):
        _doc().invoice_number = "x"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("1E+2"), "100"),
        (D("1E-7"), "0.0000001"),
        (D("-0"), "0"),
        (D("25.00"), "25.00"),
        (D("-3"), "-3"),
    ],
)
def test_format_decimal(value, text):
    assert format_decimal(value) == text


def test_round_money_half_up():
    assert round_money(D("0.125")) == D("0.13")
    assert round_money(D("-0.125")) == D("-0.13")
    assert round_money(D("2.675")) == D("2.68")


def test_floats_are_refused():
    with pytest.raises(TypeError):
        to_decimal(0.1)  # type: ignore[arg-type]
    assert to_decimal("0.1") == D("0.1")
