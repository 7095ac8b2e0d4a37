"""Masking card numbers, IBANs and tax IDs in free text people type, before it is stored.

Customers paste payment details into dispute reasons and messages; Herald must
not keep them (PCI DSS for cards, and there is no reason to hold an IBAN in a
chat thread). A run of 13 to 19 digits (spaces or dashes between groups allowed)
that passes the Luhn check is a card number; an IBAN is recognised by its form
and its ISO 13616 mod-97 check. Tax IDs (:mod:`portal.masking_tax`) are VAT
numbers with their country prefix and Spanish NIF/NIE numbers with a valid check
letter. All keep only their last four characters.
"""

from __future__ import annotations

import re

# Digits with optional single spaces or dashes between them, 13-19 digits in all.
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
# Two letters, two check digits, then 11-30 letters/digits in groups of up to four.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}\b", re.IGNORECASE)


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn check (as every card number does)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """True when ``text`` (spaces allowed) has an IBAN's form and its mod-97 check holds."""
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    if not rearranged.isalnum():
        return False
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    if not 13 <= len(digits) <= 19 or not luhn_valid(digits):
        return match.group()
    return f"[card number ending {digits[-4:]}]"


def _mask_iban(match: re.Match[str]) -> str:
    text = match.group()
    # The pattern can swallow a following word ("BE68...7034 and"); try shorter endings.
    words = text.split(" ")
    for end in range(len(words), 0, -1):
        candidate = " ".join(words[:end])
        if iban_valid(candidate):
            compact = candidate.replace(" ", "")
            rest = " ".join(words[end:])
            return f"[IBAN ending {compact[-4:].upper()}]" + (f" {rest}" if rest else "")
    return text


def mask_payment_details(text: str) -> str:
    """``text`` with card numbers, IBANs and tax IDs replaced by their last four characters."""
    from portal.masking_tax import mask_tax_ids  # it needs nothing from here; kept apart

    return mask_tax_ids(_IBAN.sub(_mask_iban, _CARD.sub(_mask_card, text)))
