"""ISO 11649 structured creditor references ("RF" references) for payment matching."""

from __future__ import annotations

import re

_ALLOWED = re.compile(r"^[0-9A-Z]{1,21}$")


def _as_digits(text: str) -> int:
    return int("".join(str(int(ch, 36)) for ch in text))


def creditor_reference(reference: str) -> str:
    """``"INV2026000123"`` → ``"RF..INV2026000123"`` with ISO 11649 check digits.

    The reference may hold up to 21 letters and digits; spaces and dashes are dropped.
    """
    body = re.sub(r"[\s-]", "", reference).upper()
    if not _ALLOWED.match(body):
        raise ValueError(f"{reference!r}: a creditor reference holds 1 to 21 letters and digits")
    check = 98 - _as_digits(body + "RF00") % 97
    return f"RF{check:02d}{body}"


def is_valid_creditor_reference(reference: str) -> bool:
    """True for a well-formed RF reference whose check digits are right."""
    compact = re.sub(r"\s", "", reference).upper()
    if not re.match(r"^RF[0-9]{2}[0-9A-Z]{1,21}$", compact):
        return False
    return _as_digits(compact[4:] + compact[:4]) % 97 == 1


def format_creditor_reference(reference: str) -> str:
    """Groups of four for people: ``RF18 5390 0754 7034``."""
    compact = re.sub(r"\s", "", reference)
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
