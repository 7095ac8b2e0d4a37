"""UBL 2.1 namespace URIs and Clark-notation tag helpers."""

from __future__ import annotations

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

PREFIXES = {"cac": CAC_NS, "cbc": CBC_NS}


def cac(name: str) -> str:
    """Clark-notation tag of a CommonAggregateComponents element."""
    return f"{{{CAC_NS}}}{name}"


def cbc(name: str) -> str:
    """Clark-notation tag of a CommonBasicComponents element."""
    return f"{{{CBC_NS}}}{name}"
