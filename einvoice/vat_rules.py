"""VAT category rules of EN 16931 (UNCL 5305 categories S, Z, E, AE, K, G, O, L, M).

Each category has an official rule family (``BR-S-*``, ``BR-E-*``, ...): the
rate a line or a document-level allowance/charge may have (``-05/-06/-07``),
whether the seller must show a VAT identifier (``-02/-03/-04``) and whether an
exemption reason is required or forbidden (``-10``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from einvoice.errors import InvoiceRuleError
from einvoice.model import Document

__all__ = ["CATEGORY_RULES", "CategoryRule", "vat_category_problems"]


@dataclass(frozen=True, slots=True)
class CategoryRule:
    """How one VAT category constrains a document."""

    prefix: str  # rule family, e.g. "BR-E"
    name: str
    rate: str  # "positive", "zero", "absent" or "any" (zero or more)
    exemption: str  # "required" or "forbidden"
    seller_vat: str  # "required", "forbidden" or "free"


CATEGORY_RULES: dict[str, CategoryRule] = {
    "S": CategoryRule("BR-S", "Standard rated", "positive", "forbidden", "required"),
    "Z": CategoryRule("BR-Z", "Zero rated", "zero", "forbidden", "required"),
    "E": CategoryRule("BR-E", "Exempt from VAT", "zero", "required", "required"),
    "AE": CategoryRule("BR-AE", "Reverse charge", "zero", "required", "required"),
    "K": CategoryRule("BR-IC", "Intra-community supply", "zero", "required", "required"),
    "G": CategoryRule("BR-G", "Export outside the EU", "zero", "required", "required"),
    "O": CategoryRule("BR-O", "Not subject to VAT", "absent", "required", "forbidden"),
    "L": CategoryRule("BR-IG", "Canary Islands IGIC", "any", "forbidden", "required"),
    "M": CategoryRule("BR-IP", "Ceuta and Melilla IPSI", "any", "forbidden", "required"),
    "B": CategoryRule("BR-B", "Split payment", "positive", "forbidden", "free"),
}

_RATE_ADVICE = {
    "positive": "must be above 0",
    "zero": "must be 0",
    "absent": "must be left out (None)",
    "any": "must be 0 or more",
}


def _rate_ok(kind: str, rate: Decimal | None) -> bool:
    if kind == "absent":
        return rate is None
    if rate is None:
        return False
    if kind == "positive":
        return rate > 0
    if kind == "zero":
        return rate == 0
    return rate >= 0


def vat_category_problems(doc: Document, categories: frozenset[str]) -> list[InvoiceRuleError]:
    """Return the VAT category problems of ``doc``'s lines and document-level allowances/charges.

    ``categories`` are the UNCL 5305 codes EN 16931 allows (see
    :func:`einvoice.codes.vat_categories`).
    """
    problems: list[InvoiceRuleError] = []
    used: dict[str, str] = {}  # category -> first field using it
    # (field, category, rate, rule suffix for rate, rule suffix for seller VAT, unknown-code rule)
    items: list[tuple[str, str | None, Decimal | None, str, str, str]] = []
    for index, line in enumerate(doc.lines):
        items.append((f"lines[{index}]", line.vat_category, line.vat_rate, "05", "02", "BR-CL-18"))
    for index, ac in enumerate(doc.allowances_charges):
        suffixes = ("07", "04") if ac.is_charge else ("06", "03")
        items.append(
            (f"allowances_charges[{index}]", ac.vat_category, ac.vat_rate, *suffixes, "BR-CL-17")
        )

    for field, category, rate, rate_suffix, seller_suffix, code_rule in items:
        if not category:
            if field.startswith("lines"):
                problems.append(
                    InvoiceRuleError(
                        "BR-CO-04",
                        f"{field}.vat_category",
                        "the line's VAT category code is missing",
                    )
                )
            continue  # the allowance case is reported as BR-32 / BR-37
        if category not in categories:
            problems.append(
                InvoiceRuleError(
                    code_rule,
                    f"{field}.vat_category",
                    f"{category!r} is not a UNCL 5305 VAT category; "
                    f"use one of {sorted(categories)}",
                )
            )
            continue
        used.setdefault(category, field)
        rule = CATEGORY_RULES.get(category)
        if rule is None:
            continue
        if not _rate_ok(rule.rate, rate):
            problems.append(
                InvoiceRuleError(
                    f"{rule.prefix}-{rate_suffix}",
                    f"{field}.vat_rate",
                    f"for VAT category {category} ({rule.name}) the VAT rate "
                    f"{_RATE_ADVICE[rule.rate]}, got {rate}",
                )
            )
        problems.extend(_seller_vat_problems(doc, category, rule, field, seller_suffix))

    for category in used:
        rule = CATEGORY_RULES.get(category)
        if rule is not None:
            problems.extend(_exemption_problems(doc, category, rule))
    if "O" in used and len(used) > 1:
        others = sorted(set(used) - {"O"})
        problems.append(
            InvoiceRuleError(
                "BR-O-11",
                f"{used['O']}.vat_category",
                "a document with category O (not subject to VAT) cannot have other "
                f"categories ({others}); "
                "issue separate invoices",
            )
        )
    if "K" in used:
        problems.extend(_intra_community_problems(doc))
    return list(dict.fromkeys(problems))  # one report per (rule, field, message)


def _seller_vat_problems(
    doc: Document, category: str, rule: CategoryRule, field: str, suffix: str
) -> list[InvoiceRuleError]:
    seller = doc.seller
    rep_vat = doc.tax_representative.vat_id if doc.tax_representative else None
    has_seller_vat = bool(seller.vat_id or seller.tax_registration_id or rep_vat)
    if rule.seller_vat == "required" and not has_seller_vat:
        return [
            InvoiceRuleError(
                f"{rule.prefix}-{suffix}",
                "seller.vat_id",
                f"VAT category {category} ({field}) needs the seller's VAT identifier, "
                "tax registration "
                "identifier or a tax representative's VAT identifier",
            )
        ]
    if rule.seller_vat == "forbidden" and (seller.vat_id or rep_vat or doc.buyer.vat_id):
        return [
            InvoiceRuleError(
                f"{rule.prefix}-{suffix}",
                "seller.vat_id",
                f"VAT category {category} ({field}) must not show the seller's, "
                "tax representative's or "
                "buyer's VAT identifier; remove them or use another category",
            )
        ]
    buyer_identified = doc.buyer.vat_id or (category == "AE" and doc.buyer.legal_registration_id)
    if category in ("AE", "K") and suffix == "02" and not buyer_identified:
        return [
            InvoiceRuleError(
                f"{rule.prefix}-{suffix}",
                "buyer.vat_id",
                f"VAT category {category} ({field}) needs the buyer's VAT identifier",
            )
        ]
    return []


def _exemption_problems(doc: Document, category: str, rule: CategoryRule) -> list[InvoiceRuleError]:
    exemption = doc.vat_exemptions.get(category)
    if exemption is not None:
        reason, code, field = exemption.reason, exemption.code, f"vat_exemptions[{category!r}]"
    else:
        entries = [entry for entry in doc.vat_breakdown if entry.category == category]
        reason = next((entry.exemption_reason for entry in entries if entry.exemption_reason), None)
        code = next(
            (entry.exemption_reason_code for entry in entries if entry.exemption_reason_code), None
        )
        field = f"vat_exemptions[{category!r}]"
    if rule.exemption == "required" and not reason and not code:
        return [
            InvoiceRuleError(
                f"{rule.prefix}-10",
                field,
                f"VAT category {category} ({rule.name}) needs an exemption reason text "
                "or VATEX code; "
                f"set doc.vat_exemptions[{category!r}] = VatExemption(reason=..., code=...)",
            )
        ]
    if rule.exemption == "forbidden" and (reason or code):
        return [
            InvoiceRuleError(
                f"{rule.prefix}-10",
                field,
                f"VAT category {category} ({rule.name}) must not have an exemption reason; "
                "remove it",
            )
        ]
    return []


def _intra_community_problems(doc: Document) -> list[InvoiceRuleError]:
    problems = []
    delivery = doc.delivery
    has_date = bool(delivery and delivery.date) or bool(doc.period_start or doc.period_end)
    if not has_date:
        problems.append(
            InvoiceRuleError(
                "BR-IC-11",
                "delivery.date",
                "an intra-community supply needs the actual delivery date or an invoicing period",
            )
        )
    if not (delivery and delivery.address and delivery.address.country_code):
        problems.append(
            InvoiceRuleError(
                "BR-IC-12",
                "delivery.address.country_code",
                "an intra-community supply needs the deliver-to country",
            )
        )
    return problems
