"""Checks that amounts already on a document agree with EN 16931 arithmetic.

Used by :func:`einvoice.check` when a document arrives with its own line net
amounts, VAT breakdown and totals (read from UBL, or computed and then
edited). Tolerances follow the official rules: a line net amount may differ
by 0.02 (PEPPOL-EN16931-R120); sums must match to the cent.
"""

from __future__ import annotations

from decimal import Decimal

from einvoice.calc import allowance_amount, line_net_amount, totals, vat_breakdown
from einvoice.errors import InvoiceRuleError
from einvoice.model import Document, DocumentKind, VatBreakdown
from einvoice.money import decimals_of
from einvoice.vat_rules import CATEGORY_RULES

__all__ = ["amount_problems"]

_LINE_SLACK = Decimal("0.02")


def amount_problems(doc: Document) -> list[InvoiceRuleError]:
    """Return the problems of the derived amounts present on ``doc``.

    Assumes the inputs passed :func:`einvoice.rules.input_problems`.
    """
    problems: list[InvoiceRuleError] = []
    _decimals(doc, problems)
    for index, line in enumerate(doc.lines):
        if line.net_amount is None:
            continue
        expected = line_net_amount(line, f"lines[{index}]")
        if abs(line.net_amount - expected) > _LINE_SLACK:
            problems.append(
                InvoiceRuleError(
                    "PEPPOL-EN16931-R120",
                    f"lines[{index}].net_amount",
                    f"is {line.net_amount} but quantity × price / base quantity ± allowances and "
                    f"charges is {expected}; correct it or leave it None to compute it",
                )
            )
    if doc.vat_breakdown:
        _breakdown(doc, vat_breakdown(doc), problems)
    if doc.totals is not None:
        _totals(doc, problems)
    return problems


def _decimals(doc: Document, problems: list[InvoiceRuleError]) -> None:
    checks: list[tuple[str, str, Decimal | None]] = []
    for index, ac in enumerate(doc.allowances_charges):
        field = f"allowances_charges[{index}]"
        rules = ("BR-DEC-05", "BR-DEC-06") if ac.is_charge else ("BR-DEC-01", "BR-DEC-02")
        checks += [
            (rules[0], f"{field}.amount", ac.amount),
            (rules[1], f"{field}.base_amount", ac.base_amount),
        ]
    for index, line in enumerate(doc.lines):
        checks.append(("BR-DEC-23", f"lines[{index}].net_amount", line.net_amount))
        for ac_index, ac in enumerate(line.allowances_charges):
            field = f"lines[{index}].allowances_charges[{ac_index}]"
            rules = ("BR-DEC-27", "BR-DEC-28") if ac.is_charge else ("BR-DEC-24", "BR-DEC-25")
            checks += [
                (rules[0], f"{field}.amount", ac.amount),
                (rules[1], f"{field}.base_amount", ac.base_amount),
            ]
    for index, entry in enumerate(doc.vat_breakdown):
        checks.append(("BR-DEC-19", f"vat_breakdown[{index}].taxable_amount", entry.taxable_amount))
        checks.append(("BR-DEC-20", f"vat_breakdown[{index}].tax_amount", entry.tax_amount))
    t = doc.totals
    if t is not None:
        checks += [
            ("BR-DEC-09", "totals.line_extension", t.line_extension),
            ("BR-DEC-10", "totals.allowance_total", t.allowance_total),
            ("BR-DEC-11", "totals.charge_total", t.charge_total),
            ("BR-DEC-12", "totals.tax_exclusive", t.tax_exclusive),
            ("BR-DEC-13", "totals.tax_total", t.tax_total),
            ("BR-DEC-15", "totals.tax_total_accounting", t.tax_total_accounting),
            ("BR-DEC-14", "totals.tax_inclusive", t.tax_inclusive),
            ("BR-DEC-16", "totals.prepaid", t.prepaid),
            ("BR-DEC-17", "totals.rounding", t.rounding),
            ("BR-DEC-18", "totals.payable", t.payable),
        ]
    for rule, field, value in checks:
        if value is not None and decimals_of(value) > 2:
            problems.append(
                InvoiceRuleError(
                    rule, field, f"{value} has more than 2 decimals; round it to cents"
                )
            )


def _family(category: str) -> str:
    rule = CATEGORY_RULES.get(category)
    return rule.prefix if rule else "BR-CO"


def _breakdown(
    doc: Document, expected: list[VatBreakdown], problems: list[InvoiceRuleError]
) -> None:
    def key(entry: VatBreakdown) -> tuple[str, Decimal | None]:
        return (entry.category, entry.rate)

    wanted = {key(entry): entry for entry in expected}
    seen = set()
    for index, entry in enumerate(doc.vat_breakdown):
        field = f"vat_breakdown[{index}]"
        target = wanted.get(key(entry))
        if target is None or key(entry) in seen:
            problems.append(
                InvoiceRuleError(
                    "BR-CO-18",
                    field,
                    f"no line or allowance/charge has VAT category {entry.category} "
                    f"at rate {entry.rate} "
                    "(or it is listed twice); recompute the breakdown",
                )
            )
            continue
        seen.add(key(entry))
        family = _family(entry.category)
        if entry.taxable_amount != target.taxable_amount:
            problems.append(
                InvoiceRuleError(
                    f"{family}-08",
                    f"{field}.taxable_amount",
                    f"is {entry.taxable_amount} but the lines and allowances/charges of category "
                    f"{entry.category} at {entry.rate}% sum to {target.taxable_amount}",
                )
            )
        if entry.tax_amount != target.tax_amount:
            problems.append(
                InvoiceRuleError(
                    f"{family}-09",
                    f"{field}.tax_amount",
                    f"is {entry.tax_amount} but taxable amount × rate, rounded to cents, "
                    f"is {target.tax_amount}",
                )
            )
    for missing in set(wanted) - seen:
        category, rate = missing
        problems.append(
            InvoiceRuleError(
                f"{_family(category)}-01",
                "vat_breakdown",
                f"VAT category {category} at rate {rate} is used but has no VAT breakdown entry",
            )
        )


def _totals(doc: Document, problems: list[InvoiceRuleError]) -> None:
    given = doc.totals
    assert given is not None
    breakdown = doc.vat_breakdown or vat_breakdown(doc)
    expected = totals(doc, breakdown)
    # The allowance/charge totals may be present as 0 with nothing to sum.
    allowance_sum = sum(
        (allowance_amount(ac) for ac in doc.allowances_charges if not ac.is_charge), Decimal(0)
    )
    charge_sum = sum(
        (allowance_amount(ac) for ac in doc.allowances_charges if ac.is_charge), Decimal(0)
    )
    pairs = [
        ("BR-CO-10", "line_extension", given.line_extension, expected.line_extension),
        ("BR-CO-11", "allowance_total", given.allowance_total, expected.allowance_total),
        ("BR-CO-12", "charge_total", given.charge_total, expected.charge_total),
        (
            "BR-CO-13",
            "tax_exclusive",
            given.tax_exclusive,
            given.line_extension - (given.allowance_total or 0) + (given.charge_total or 0),
        ),
        (
            "BR-CO-14",
            "tax_total",
            given.tax_total,
            sum((e.tax_amount for e in breakdown), Decimal(0)),
        ),
        ("BR-CO-15", "tax_inclusive", given.tax_inclusive, given.tax_exclusive + given.tax_total),
        (
            "BR-CO-16",
            "payable",
            given.payable,
            given.tax_inclusive - (given.prepaid or 0) + (given.rounding or 0),
        ),
    ]
    for rule, name, value, want in pairs:
        if rule == "BR-CO-11" and value is not None and want is None and value == allowance_sum:
            continue
        if rule == "BR-CO-12" and value is not None and want is None and value == charge_sum:
            continue
        if value != want:
            problems.append(
                InvoiceRuleError(
                    rule, f"totals.{name}", f"is {value} but should be {want}; recompute the totals"
                )
            )
    if doc.tax_currency and given.tax_total_accounting is None:
        problems.append(
            InvoiceRuleError(
                "BR-53",
                "totals.tax_total_accounting",
                "with a VAT accounting currency the VAT total in that currency is required; "
                "pass tax_exchange_rate to compute() or set it",
            )
        )
    accounting = given.tax_total_accounting
    if (
        accounting is not None
        and accounting != 0
        and given.tax_total != 0
        and (accounting < 0) != (given.tax_total < 0)
    ):
        problems.append(
            InvoiceRuleError(
                "PEPPOL-EN16931-R055",
                "totals.tax_total_accounting",
                "the VAT total in accounting currency must have the same sign as the VAT total",
            )
        )
    if given.payable > 0 and not doc.due_date and not doc.payment_terms:
        problems.append(
            InvoiceRuleError(
                "BR-CO-25",
                "due_date",
                "an amount is due: give a due date or payment terms",
            )
        )
    if doc.kind is DocumentKind.CREDIT_NOTE:
        return
