"""Small lxml element builders used by the UBL writer."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from einvoice.money import format_decimal
from einvoice.ubl.namespaces import cac, cbc

# Clark-notation names, built once: the writer asks for the same few dozen names
# hundreds of times per document.
_CAC: dict[str, str] = {}
_CBC: dict[str, str] = {}
_SubElement = etree.SubElement


def agg(parent: etree._Element, name: str) -> etree._Element:
    """Append and return an empty ``cac:name`` element."""
    tag = _CAC.get(name)
    if tag is None:
        tag = _CAC[name] = cac(name)
    return _SubElement(parent, tag)


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
    if value is None:
        return None
    kind = type(value)
    if kind is str:
        if not value:
            return None
        content = value
    elif kind is Decimal:
        content = format_decimal(value)
    elif kind is bool:
        content = "true" if value else "false"
    elif isinstance(value, date):
        content = value.isoformat()
    else:
        content = str(value)
        if not content:
            return None
    qualified = _CBC.get(tag)
    if qualified is None:
        qualified = _CBC[tag] = cbc(tag)
    if attrs:
        element = _SubElement(parent, qualified,
                              {k: v for k, v in attrs.items() if v is not None and v != ""})
    else:
        element = _SubElement(parent, qualified)
    element.text = content
    return element


def amount(parent: etree._Element, name: str, value: Decimal | None, currency: str) -> None:
    """Append a ``cbc:name`` amount with its ``currencyID`` unless ``value`` is None."""
    if value is not None:
        text(parent, name, value, currencyID=currency)
