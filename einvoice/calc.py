"""EN 16931 arithmetic: line net amounts, allowances, VAT breakdown and totals.

All amounts are Decimal and rounded half-up to 2 decimals at the points the
standard rounds: a line net amount, an allowance/charge computed from a
percentage, and each VAT category's tax amount, which is computed on the
category's taxable amount *then* rounded (never summed from rounded lines).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from einvoice.errors import InvoiceRuleError
from einvoice.model import AllowanceCharge, Document, Line, Totals, VatBreakdown
from einvoice.money import round_money

__all__ = ["allowance_amount", "check", "compute", "line_net_amount", "totals", "vat_breakdown"]

_HUNDRED = Decimal(100)
ZERO = Decimal("0.00")


def allowance_amount(
    ac: AllowanceCharge, field: str = "allowances_charges[0]", line_level: bool = False
) -> Decimal:
    """Return the amount of an allowance or charge.

    The given ``amount`` wins; else ``base_amount`` × ``percentage`` / 100,
    rounded half-up to cents. Raises InvoiceRuleError when neither is given.
    """
    if ac.amount is not None:
        return ac.amount
    if ac.percentage is not None and ac.base_amount is not None:
        return round_money(ac.base_amount * ac.percentage / _HUNDRED)
    if line_level:
        rule = "BR-43" if ac.is_charge else "BR-41"
    else:
        rule = "BR-36" if ac.is_charge else "BR-31"
    kind = "charge" if ac.is_charge else "allowance"
    raise InvoiceRuleError(
        rule,
        f"{field}.amount",
        f"the {kind} has no amount: give amount, or percentage and base_amount",
    )


def line_net_amount(line: Line, field: str = "lines[0]") -> Decimal:
    """Compute a line's net amount (BT-131) from its quantity, price and allowances/charges.

    quantity × (net_price / base_quantity) − line allowances + line charges,
    rounded half-up to 2 decimals. The line's given ``net_amount`` is ignored.
    """
    base = Decimal(1) if line.base_quantity is None else line.base_quantity
    if base <= 0:
        raise InvoiceRuleError(
            "PEPPOL-EN16931-R121",
            f"{field}.base_quantity",
            f"base quantity must be above zero, got {base}; leave it None to mean 1",
        )
    amount = line.quantity * line.net_price / base
    for index, ac in enumerate(line.allowances_charges):
        value = allowance_amount(ac, f"{field}.allowances_charges[{index}]", line_level=True)
        amount += value if ac.is_charge else -value
    return round_money(amount)


def _net(line: Line, index: int) -> Decimal:
    return (
        line.net_amount if line.net_amount is not None else line_net_amount(line, f"lines[{index}]")
    )


def _rate_key(category: str, rate: Decimal | None) -> tuple[str, Decimal | None]:
    # Decimal("25.0") == Decimal("25") and they hash alike, so one group per rate.
    return (category, None if category == "O" else rate)


def vat_breakdown(doc: Document) -> list[VatBreakdown]:
    """Return the VAT breakdown (BG-23): one entry per (category, rate).

    Taxable amount = line net amounts + document charges − document allowances
    of that category and rate; tax = taxable × rate / 100, rounded half-up once
    per category. Exemption reasons come from ``doc.vat_exemptions``, else from
    a breakdown entry of the same category already on the document.
    """
    taxable: dict[tuple[str, Decimal | None], Decimal] = {}
    for index, line in enumerate(doc.lines):
        key = _rate_key(line.vat_category, line.vat_rate)
        taxable[key] = taxable.get(key, ZERO) + _net(line, index)
    for index, ac in enumerate(doc.allowances_charges):
        key = _rate_key(ac.vat_category or "", ac.vat_rate)
        value = allowance_amount(ac, f"allowances_charges[{index}]")
        taxable[key] = taxable.get(key, ZERO) + (value if ac.is_charge else -value)

    previous = {entry.category: entry for entry in doc.vat_breakdown}
    result = []
    for (category, rate), amount in taxable.items():
        tax = ZERO if rate is None else round_money(amount * rate / _HUNDRED)
        exemption = doc.vat_exemptions.get(category)
        reason = exemption.reason if exemption else None
        code = exemption.code if exemption else None
        if exemption is None and category in previous:
            reason = previous[category].exemption_reason
            code = previous[category].exemption_reason_code
        result.append(
            VatBreakdown(
                category=category,
                rate=rate,
                taxable_amount=round_money(amount),
                tax_amount=tax,
                exemption_reason=reason,
                exemption_reason_code=code,
            )
        )
    return result


def _sum(values: Iterable[Decimal]) -> Decimal:
    return sum(values, ZERO)


def totals(doc: Document, breakdown: list[VatBreakdown] | None = None) -> Totals:
    """Return the document totals (BG-22) computed from lines, allowances and VAT.

    ``prepaid`` (BT-113), ``rounding`` (BT-114) and ``tax_total_accounting``
    (BT-111) cannot be derived and are kept from ``doc.totals``.
    """
    if breakdown is None:
        breakdown = vat_breakdown(doc)
    line_extension = _sum(_net(line, i) for i, line in enumerate(doc.lines))
    allowances = [
        allowance_amount(ac, f"allowances_charges[{i}]")
        for i, ac in enumerate(doc.allowances_charges)
        if not ac.is_charge
    ]
    charges = [
        allowance_amount(ac, f"allowances_charges[{i}]")
        for i, ac in enumerate(doc.allowances_charges)
        if ac.is_charge
    ]
    allowance_total = round_money(_sum(allowances)) if allowances else None
    charge_total = round_money(_sum(charges)) if charges else None
    tax_exclusive = line_extension - (allowance_total or 0) + (charge_total or 0)
    tax_total = _sum(entry.tax_amount for entry in breakdown)
    tax_inclusive = tax_exclusive + tax_total
    given = doc.totals
    prepaid = given.prepaid if given else None
    rounding = given.rounding if given else None
    return Totals(
        line_extension=round_money(line_extension),
        allowance_total=allowance_total,
        charge_total=charge_total,
        tax_exclusive=round_money(tax_exclusive),
        tax_total=round_money(tax_total),
        tax_total_accounting=given.tax_total_accounting if given else None,
        tax_inclusive=round_money(tax_inclusive),
        prepaid=prepaid,
        rounding=rounding,
        payable=round_money(tax_inclusive - (prepaid or 0) + (rounding or 0)),
    )


def compute(
    doc: Document, *, tax_exchange_rate: Decimal | None = None, rules_dir: Path | None = None
) -> Document:
    """Return a copy of ``doc`` with every derivable amount filled in.

    Fills missing line net amounts, allowance/charge amounts given as a
    percentage, the VAT breakdown and the totals. With ``tax_exchange_rate``
    (units of ``doc.tax_currency`` per unit of ``doc.currency``) also fills
    the VAT total in accounting currency (BT-111). Raises InvoiceRuleError
    for wrong input that decides the amounts (currency, lines, allowances,
    VAT categories, rates and exemptions; see
    :func:`einvoice.rules.input_problems`); other problems (parties,
    references) are reported by :func:`check` and refused by the writer.
    ``doc`` itself is never changed.
    """
    from einvoice.rules import input_problems

    problems = input_problems(doc, rules_dir, amounts_only=True)
    if problems:
        raise problems[0]
    result = copy.deepcopy(doc)
    for index, ac in enumerate(result.allowances_charges):
        ac.amount = allowance_amount(ac, f"allowances_charges[{index}]")
    for index, line in enumerate(result.lines):
        for ac_index, ac in enumerate(line.allowances_charges):
            ac.amount = allowance_amount(
                ac, f"lines[{index}].allowances_charges[{ac_index}]", line_level=True
            )
        if line.net_amount is None:
            line.net_amount = line_net_amount(line, f"lines[{index}]")
    result.vat_breakdown = vat_breakdown(result)
    result.totals = totals(result, result.vat_breakdown)
    if tax_exchange_rate is not None and result.tax_currency:
        result.totals.tax_total_accounting = round_money(
            result.totals.tax_total * tax_exchange_rate
        )
    return result


def check(doc: Document, rules_dir: Path | None = None) -> list[InvoiceRuleError]:
    """Return every business-rule problem of ``doc`` (empty list when it is fine).

    See :func:`einvoice.rules.check`; re-exported here for convenience.
    """
    from einvoice.rules import check as _check

    return _check(doc, rules_dir)
