"""Jinja filters that show money and dates the way the reader expects (Babel)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from flask import Flask

DEFAULT_LOCALE = "en_GB"


def money(amount: Decimal | None, currency: str, locale: str = DEFAULT_LOCALE) -> str:
    """``1234.5, "EUR"`` → ``€1,234.50`` (in the reader's locale)."""
    if amount is None:
        return ""
    return format_currency(amount, currency, locale=locale)


def price(amount: Decimal | None, currency: str, locale: str = DEFAULT_LOCALE) -> str:
    """A unit price: at least cents, and every further decimal it has (``€0.00204``)."""
    if amount is None:
        return ""
    return format_currency(amount.normalize() if -amount.normalize().as_tuple().exponent > 2
                           else amount.quantize(Decimal("0.01")), currency, locale=locale,
                           decimal_quantization=False)


def number(value: Decimal | None, locale: str = DEFAULT_LOCALE) -> str:
    """A quantity or rate without trailing zeros: ``2.500000`` → ``2.5``."""
    if value is None:
        return ""
    return format_decimal(value.normalize(), locale=locale, decimal_quantization=False)


def long_date(value: date | None, locale: str = DEFAULT_LOCALE) -> str:
    """``2026-11-23`` → ``23 Nov 2026``."""
    if value is None:
        return ""
    return format_date(value, format="medium", locale=locale)


def init_app(app: Flask) -> None:
    """Register the filters."""
    app.add_template_filter(money, "money")
    app.add_template_filter(price, "price")
    app.add_template_filter(number, "number")
    app.add_template_filter(long_date, "date")
