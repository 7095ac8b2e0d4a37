"""Small lxml element builders used by the UBL writer."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from einvoice.money import format_decimal
from einvoice.ubl.namespaces import cac, cbc


def agg(parent: etree._Element, name: str) -> etree._Element:
    """Append and return an empty ``cac:name`` element."""
    return etree.SubElement(parent, cac(name))


def text(
    parent: etree._Element,
    tag: str,
    value: str | date | Decimal | bool | None,
    /,
    **attrs: str | None,
) -> etree._Element | None:
    """Append ``cbc:tag`` with ``value`` unless the value is None or empty.

    Dates are written as ISO dates, Decimals without exponent, booleans as
    ``true``/``false``; attributes whose value is None are left out.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        content = "true" if value else "false"
    elif isinstance(value, Decimal):
        content = format_decimal(value)
    elif isinstance(value, date):
        content = value.isoformat()
    else:
        content = str(value)
    element = etree.SubElement(parent, cbc(tag))
    element.text = content
    for key, attr in attrs.items():
        if attr is not None and attr != "":
            element.set(key, attr)
    return element


def amount(parent: etree._Element, name: str, value: Decimal | None, currency: str) -> None:
    """Append a ``cbc:name`` amount with its ``currencyID`` unless ``value`` is None."""
    if value is not None:
        text(parent, name, value, currencyID=currency)
