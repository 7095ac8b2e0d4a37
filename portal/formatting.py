"""Jinja filters that show money and dates the way the reader expects (Babel).

Without a ``locale`` argument they follow the reader's language (``portal.i18n``):
``€1,234.56`` in English, ``€ 1.234,56`` in Dutch, ``1234,56 €`` in Spanish.
Outside a request (tasks, the CLI) they fall back to British English.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from flask import Flask

from portal.i18n import current_format_locale

DEFAULT_LOCALE = "en_GB"


def _locale(locale: str | None) -> Locale:
    return _parsed(locale or current_format_locale())


@lru_cache(maxsize=64)
def _parsed(identifier: str) -> Locale:
    # Babel parses a locale given by name on every call, a third of formatting an amount;
    # an invoice page formats dozens.
    return Locale.parse(identifier)


def money(amount: Decimal | None, currency: str, locale: str | None = None) -> str:
    """``1234.5, "EUR"`` → ``€1,234.50`` (in the reader's locale)."""
    if amount is None:
        return ""
    return format_currency(amount, currency, locale=_locale(locale))


def price(amount: Decimal | None, currency: str, locale: str | None = None) -> str:
    """A unit price: at least cents, and every further decimal it has (``€0.00204``)."""
    if amount is None:
        return ""
    return format_currency(amount.normalize() if -amount.normalize().as_tuple().exponent > 2
                           else amount.quantize(Decimal("0.01")), currency, locale=_locale(locale),
                           decimal_quantization=False)


def number(value: Decimal | None, locale: str | None = None) -> str:
    """A quantity or rate without trailing zeros: ``2.500000`` → ``2.5``."""
    if value is None:
        return ""
    return format_decimal(value.normalize(), locale=_locale(locale), decimal_quantization=False)


def percent(rate: Decimal | None, locale: str | None = None) -> str:
    """A rate given in percent: ``21`` → ``21%`` (``21 %`` in Spanish), ``5.5`` → ``5.5%``."""
    if rate is None:
        return ""
    return format_percent(rate.normalize() / 100, locale=_locale(locale),
                          decimal_quantization=False)


def long_date(value: date | None, locale: str | None = None) -> str:
    """``2026-11-23`` → ``23 Nov 2026``."""
    if value is None:
        return ""
    return format_date(value, format="medium", locale=_locale(locale))


def init_app(app: Flask) -> None:
    """Register the filters."""
    app.add_template_filter(money, "money")
    app.add_template_filter(price, "price")
    app.add_template_filter(number, "number")
    app.add_template_filter(percent, "percent")
    app.add_template_filter(long_date, "date")
