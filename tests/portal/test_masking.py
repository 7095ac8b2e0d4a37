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


@pytest.mark.parametrize("text, expected", [
    ("our VAT number is BE0123456789.", "our VAT number is [tax ID ending 6789]."),
    ("BTW NL123456789B01 graag", "BTW [tax ID ending 9B01] graag"),
    ("USt-IdNr. DE123456789 bitte", "USt-IdNr. [tax ID ending 6789] bitte"),
    ("NIF ES X1234567L por favor", "NIF [tax ID ending 567L] por favor"),
    ("ESB12345678", "[tax ID ending 5678]"),
    ("TVA: BE 0123.456.789, merci", "TVA: [tax ID ending 6789], merci"),
    ("nl123456789b01", "[tax ID ending 9B01]"),
    ("ATU12345678 and FRXX123456789", "[tax ID ending 5678] and [tax ID ending 6789]"),
    ("BE0123456789 DE123456789", "[tax ID ending 6789] [tax ID ending 6789]"),
    ("IT 12345678901", "[tax ID ending 8901]"),
    ("CHE-123.456.789 MWST", "[tax ID ending 6789]"),
    ("NO 123456789MVA", "[tax ID ending 6789]"),
    ("DNI 12345678Z", "DNI [tax ID ending 678Z]"),
    ("NIE X1234567L", "NIE [tax ID ending 567L]"),
    ("card 4111 1111 1111 1111 and VAT DE123456789",
     "card [card number ending 1111] and VAT [tax ID ending 6789]"),
])
def test_masks_tax_ids(text, expected):
    assert mask_payment_details(text) == expected


@pytest.mark.parametrize("text", [
    "DNI 12345678A",  # wrong check letter
    "llame al número de 612345678",  # a Spanish phone number after "de", not a German VAT ID
    "BE2123456789",  # Belgian numbers start with 0 or 1
    "DE12345678",  # 8 digits: too short for Germany
    "DE1234567890",  # 10 digits: too long
    "NL123456789A01",  # Dutch numbers have a B
    "room DE123456789X",  # runs on into a longer word
    "XX123456789",  # no such country
    "ticket 2026-11-23 at 10:00",
])
def test_leaves_other_text_alone(text):
    assert mask_payment_details(text) == text
