"""Card numbers and IBANs never reach the database from free text."""

from __future__ import annotations

import pytest

from portal.masking import iban_valid, luhn_valid, mask_payment_details


@pytest.mark.parametrize("text, expected", [
    ("my card 4111 1111 1111 1111 was charged",
     "my card [card number ending 1111] was charged"),
    ("4111-1111-1111-1111", "[card number ending 1111]"),
    ("Amex 378282246310005.", "Amex [card number ending 0005]."),
    ("19 digits 6011000990139424 ok", "19 digits [card number ending 9424] ok"),
    ("IBAN BE68 5390 0754 7034 please", "IBAN [IBAN ending 7034] please"),
    ("nl91abna0417164300", "[IBAN ending 4300]"),
    ("DE89370400440532013000 and 4111111111111111",
     "[IBAN ending 3000] and [card number ending 1111]"),
])
def test_masks_cards_and_ibans(text, expected):
    assert mask_payment_details(text) == expected


@pytest.mark.parametrize("text", [
    "invoice INV-2026-000123 of 120.15",
    "order 4111111111111112 (fails Luhn)",
    "phone +32 470 12 34 56",
    "123456789012",  # 12 digits: too short for a card
    "BE68 5390 0754 7035",  # IBAN check digits do not match
    "customer reference 2026-11-03-0001-0002",
])
def test_leaves_other_numbers_alone(text):
    assert mask_payment_details(text) == text


def test_checks():
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB82WEST")
