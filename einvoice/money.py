"""Decimal helpers shared by calculation, writing and reading.

Money is always :class:`decimal.Decimal`; floats are refused so that a binary
rounding error can never reach an invoice.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")


def to_decimal(value: Decimal | int | str) -> Decimal:
    """Return ``value`` as a Decimal; raise TypeError for floats.

    Floats are refused on purpose: ``Decimal(0.1)`` is not 0.1.
    """
    if isinstance(value, float):
        raise TypeError(f"use Decimal or str for amounts, not float ({value!r})")
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


def round_money(value: Decimal) -> Decimal:
    """Round an amount half-up to 2 decimals, the EN 16931 precision."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def decimals_of(value: Decimal) -> int:
    """Number of decimals written for ``value`` (0 for integers)."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def format_decimal(value: Decimal) -> str:
    """Format a Decimal for XML: plain notation, never an exponent.

    ``Decimal("1E+2")`` becomes ``"100"`` and ``Decimal("-0")`` becomes ``"0"``;
    trailing zeros that were given are kept (``"25.00"`` stays ``"25.00"``).
    """
    if not value.is_finite():
        raise ValueError(f"cannot write a non-finite number: {value}")
    text = format(value, "f")
    if text.startswith("-") and value == 0:
        text = text[1:]
    return text
