"""EPC QR codes ("GiroCode"): a SEPA credit transfer a banking app can scan.

The payload follows EPC069-12 version 002: fixed lines separated by LF, UTF-8,
at most 331 bytes. Version 002 makes the BIC optional inside the EEA, but it
is written when known because some older apps still ask for it.
"""

from __future__ import annotations

import re
from decimal import Decimal

import segno

from einvoice.creditor_reference import is_valid_creditor_reference

__all__ = ["epc_qr_payload", "epc_qr_png", "epc_qr_svg"]

_MAX_AMOUNT = Decimal("999999999.99")
_MAX_PAYLOAD_BYTES = 331


def _compact(text: str) -> str:
    return re.sub(r"\s", "", text).upper()


def epc_qr_payload(
    *,
    name: str,
    iban: str,
    amount: Decimal,
    bic: str | None = None,
    reference: str | None = None,
    text: str | None = None,
    purpose: str | None = None,
) -> str:
    """Return the EPC069-12 v002 payload for a EUR credit transfer.

    ``reference`` must be an ISO 11649 RF reference; it goes in the structured
    remittance field. Any other remittance text (e.g. a Belgian "+++" number)
    goes in ``text``, the unstructured field: the standard allows one or the
    other, never both. ``name`` is cut to 70 characters. Raises ValueError
    for an amount outside 0.01 .. 999999999.99, both remittance fields, an
    invalid RF reference, or a payload over 331 bytes.
    """
    amount = Decimal(amount)
    if not Decimal("0.01") <= amount <= _MAX_AMOUNT:
        raise ValueError(f"EPC QR amount must be 0.01 to {_MAX_AMOUNT} EUR, not {amount}")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"EPC QR amount has more than 2 decimals: {amount}")
    if reference and text:
        raise ValueError("EPC QR holds a structured reference or a text, not both")
    if reference and not is_valid_creditor_reference(reference):
        raise ValueError(f"{reference!r} is not a valid ISO 11649 RF reference")
    lines = [
        "BCD",
        "002",
        "1",  # character set 1 = UTF-8
        "SCT",
        _compact(bic) if bic else "",
        name.strip()[:70],
        _compact(iban),
        f"EUR{amount:.2f}",
        purpose or "",
        _compact(reference) if reference else "",
        (text or "").strip()[:140],
    ]
    # Trailing empty fields may be left out; scanners accept both, and the
    # shorter payload gives a less dense code.
    while lines[-1] == "":
        lines.pop()
    payload = "\n".join(lines)
    if len(payload.encode()) > _MAX_PAYLOAD_BYTES:
        raise ValueError("EPC QR payload is over 331 bytes")
    return payload


def epc_qr_svg(payload: str, *, title: str | None = None) -> str:
    """Return the payload as an SVG QR code (error level M, as EPC069-12 asks)."""
    qr = segno.make(payload, error="m", micro=False, encoding="utf-8", boost_error=False)
    return qr.svg_inline(scale=1, border=0, title=title, omitsize=True)


def epc_qr_png(payload: str) -> str:
    """Return the payload as a QR code PNG ``data:`` URI, one pixel per module (level M).

    The PDF template scales it with ``image-rendering: pixelated``, which keeps
    the modules sharp at any size.
    """
    qr = segno.make(payload, error="m", micro=False, encoding="utf-8", boost_error=False)
    return qr.png_data_uri(scale=1, border=0)
