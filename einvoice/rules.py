"""Business-rule checks of a :class:`~einvoice.model.Document` before it is computed or written.

Each problem is an :class:`~einvoice.errors.InvoiceRuleError` carrying the
official rule id (EN 16931 ``BR-*`` or Peppol ``PEPPOL-EN16931-*``), the field
path and a message that says how to fix it. :func:`check` returns all of
them; :func:`einvoice.compute` and :func:`einvoice.write_ubl` raise the first.
Peppol's rules apply to a document that declares Peppol BIS Billing 3.0 (its
``customization_id``, the default); one that declares EN 16931 alone is held to
EN 16931's rules only, as the official validators hold it.
"""

from __future__ import annotations

import re
from pathlib import Path

from einvoice import codes
from einvoice.errors import InvoiceRuleError
from einvoice.model import (
    EN16931_CUSTOMIZATION_ID,
    PEPPOL_CUSTOMIZATION_ID,
    AllowanceCharge,
    Document,
    DocumentKind,
    Line,
)
from einvoice.party_rules import Problems, check_other_parties, check_party
from einvoice.vat_rules import vat_category_problems

__all__ = ["check", "input_problems"]

_CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")
EMBEDDED_MIME_CODES = frozenset(
    {
        "application/pdf",
        "image/png",
        "image/jpeg",
        "text/csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.oasis.opendocument.spreadsheet",
    }
)


def check(doc: Document, rules_dir: Path | None = None) -> list[InvoiceRuleError]:
    """Return every problem found in ``doc``, in document order; empty when it is valid.

    Checks the input rules (see :func:`input_problems`) and, when those pass,
    that every amount already on the document (line net amounts, VAT
    breakdown, totals) equals what :func:`einvoice.compute` derives.
    ``rules_dir`` (else ``$EINVOICE_RULES_DIR``) enables the official code
    lists for unit and currency codes.
    """
    from einvoice.consistency import amount_problems

    problems = input_problems(doc, rules_dir)
    if not problems:
        problems.extend(_applicable(doc, amount_problems(doc)))
    return problems


def input_problems(
    doc: Document, rules_dir: Path | None = None, *, amounts_only: bool = False
) -> list[InvoiceRuleError]:
    """Return the problems of the document's inputs (everything but derived amounts).

    With ``amounts_only`` (what :func:`einvoice.compute` uses) only the rules
    that decide the arithmetic and the VAT are checked: currency, lines,
    allowances/charges and VAT categories. Parties, references, payment
    means and attachments are left to :func:`check` and the writer.
    """
    problems = Problems()
    if not amounts_only:
        _check_header(doc, problems, rules_dir)
    _check_currency(doc, problems, rules_dir)
    if not amounts_only:
        check_party(doc.seller, "seller", problems, needs_address=True)
        check_party(doc.buyer, "buyer", problems, needs_address=True)
        check_other_parties(doc, problems)
    if not doc.lines:
        problems.add("BR-16", "lines", "an invoice needs at least one line; add a Line")
    units = codes.unit_codes(rules_dir)
    for index, line in enumerate(doc.lines):
        _check_line(line, f"lines[{index}]", problems, units, doc)
    for index, ac in enumerate(doc.allowances_charges):
        _check_allowance(ac, f"allowances_charges[{index}]", problems, line_level=False)
    if not amounts_only:
        _check_payment(doc, problems, rules_dir)
        _check_attachments(doc, problems)
    problems.extend(vat_category_problems(doc, codes.vat_categories(rules_dir)))
    return _applicable(doc, problems)


def _applicable(doc: Document, problems: list[InvoiceRuleError]) -> list[InvoiceRuleError]:
    """The problems under the rules the document declares: Peppol's only for Peppol BIS."""
    if doc.follows_peppol:
        return list(problems)
    return [problem for problem in problems if not problem.rule.startswith("PEPPOL-")]


def _check_currency(doc: Document, problems: Problems, rules_dir: Path | None) -> None:
    currencies = codes.currency_codes(rules_dir)
    if not doc.currency:
        problems.add(
            "BR-05",
            "currency",
            "the invoice currency code is missing; give an ISO 4217 code such as 'EUR'",
        )
    elif not _CURRENCY_PATTERN.match(doc.currency) or (
        currencies is not None and doc.currency not in currencies
    ):
        problems.add("BR-CL-04", "currency", f"{doc.currency!r} is not an ISO 4217 currency code")
    if doc.tax_currency is not None:
        if not _CURRENCY_PATTERN.match(doc.tax_currency) or (
            currencies is not None and doc.tax_currency not in currencies
        ):
            problems.add(
                "BR-CL-05", "tax_currency", f"{doc.tax_currency!r} is not an ISO 4217 currency code"
            )
        elif doc.tax_currency == doc.currency:
            problems.add(
                "PEPPOL-EN16931-R005",
                "tax_currency",
                "must differ from the invoice currency; leave it None instead",
            )


def _check_header(doc: Document, problems: Problems, rules_dir: Path | None) -> None:
    specification = doc.customization_id.strip()
    use = (f"use {PEPPOL_CUSTOMIZATION_ID!r} (Peppol BIS Billing 3.0) or "
           f"{EN16931_CUSTOMIZATION_ID!r} (EN 16931 alone)")
    if not specification:
        problems.add("BR-01", "customization_id",
                     f"the specification identifier is missing; {use}")
    elif not specification.startswith(EN16931_CUSTOMIZATION_ID):
        problems.add("BR-01", "customization_id",
                     f"{specification!r} is not an EN 16931 specification identifier; {use}")
    if not doc.profile_id:
        problems.add(
            "PEPPOL-EN16931-R001", "profile_id", "the business process (ProfileID) is missing"
        )
    if not doc.number:
        problems.add("BR-02", "number", "the invoice number is missing")
    if doc.issue_date is None:
        problems.add("BR-03", "issue_date", "the issue date is missing")
    type_codes = codes.document_type_codes(doc.kind is DocumentKind.CREDIT_NOTE, rules_dir)
    if not doc.type_code.isdigit() or (type_codes is not None and doc.type_code not in type_codes):
        problems.add(
            "BR-CL-01", "type_code", f"{doc.type_code!r} is not a UNTDID 1001 code for a {doc.kind}"
        )
    if not doc.buyer_reference and not doc.order_reference:
        problems.add(
            "PEPPOL-EN16931-R003",
            "buyer_reference",
            "give a buyer reference or a purchase order reference",
        )
    if doc.period_start and doc.period_end and doc.period_end < doc.period_start:
        problems.add("BR-29", "period_end", "the invoicing period ends before it starts")
    if doc.kind is DocumentKind.CREDIT_NOTE and doc.due_date and not doc.payment_means:
        problems.add(
            "EINVOICE-CN-DUE",
            "due_date",
            "a UBL credit note carries the due date in PaymentMeans; "
            "add a payment means or drop the due date",
        )
    for index, (number, _issued) in enumerate(doc.preceding_invoices):
        if not number:
            problems.add(
                "BR-55", f"preceding_invoices[{index}]", "the preceding invoice number is missing"
            )


def _check_line(
    line: Line, field: str, problems: Problems, units: frozenset[str] | None, doc: Document
) -> None:
    if not line.id:
        problems.add("BR-21", f"{field}.id", "the line identifier is missing")
    if line.quantity is None:
        problems.add("BR-22", f"{field}.quantity", "the invoiced quantity is missing")
    if not line.unit_code:
        problems.add(
            "BR-23", f"{field}.unit_code", "the unit of measure code is missing, e.g. 'C62' (one)"
        )
    elif not codes.UNIT_CODE_PATTERN.match(line.unit_code) or (
        units is not None and line.unit_code not in units
    ):
        problems.add(
            "BR-CL-23",
            f"{field}.unit_code",
            f"{line.unit_code!r} is not a UN/ECE Rec 20/21 unit code; "
            "use e.g. 'C62' (one), 'HUR' (hour), 'DAY'",
        )
    if not line.item_name:
        problems.add("BR-25", f"{field}.item_name", "the item name is missing")
    if line.net_price is None:
        problems.add("BR-26", f"{field}.net_price", "the item net price is missing")
    elif line.net_price < 0:
        problems.add(
            "BR-27",
            f"{field}.net_price",
            f"the net price must not be negative ({line.net_price}); "
            "use a negative quantity instead",
        )
    if line.gross_price is not None and line.gross_price < 0:
        problems.add("BR-28", f"{field}.gross_price", "the gross price must not be negative")
    if (
        line.gross_price is not None
        and line.price_discount is not None
        and line.net_price is not None
        and line.gross_price - line.price_discount != line.net_price
    ):
        problems.add(
            "PEPPOL-EN16931-R046",
            f"{field}.net_price",
            "net price must equal gross price − price discount = "
            f"{line.gross_price - line.price_discount}",
        )
    if line.base_quantity is not None and line.base_quantity <= 0:
        problems.add(
            "PEPPOL-EN16931-R121",
            f"{field}.base_quantity",
            f"base quantity must be above zero, got {line.base_quantity}; leave it None to mean 1",
        )
    if line.period_start and line.period_end and line.period_end < line.period_start:
        problems.add("BR-30", f"{field}.period_end", "the line period ends before it starts")
    if line.period_start and doc.period_start and line.period_start < doc.period_start:
        problems.add(
            "PEPPOL-EN16931-R110",
            f"{field}.period_start",
            "the line period starts before the invoice period",
        )
    if line.period_end and doc.period_end and line.period_end > doc.period_end:
        problems.add(
            "PEPPOL-EN16931-R111",
            f"{field}.period_end",
            "the line period ends after the invoice period",
        )
    for index, ac in enumerate(line.allowances_charges):
        _check_allowance(ac, f"{field}.allowances_charges[{index}]", problems, line_level=True)


def _check_allowance(ac: AllowanceCharge, field: str, problems: Problems, line_level: bool) -> None:
    kind = "charge" if ac.is_charge else "allowance"
    if line_level:
        amount_rule, reason_rule = ("BR-43", "BR-44") if ac.is_charge else ("BR-41", "BR-42")
    else:
        amount_rule, reason_rule = ("BR-36", "BR-38") if ac.is_charge else ("BR-31", "BR-33")
    if ac.amount is None and (ac.percentage is None or ac.base_amount is None):
        problems.add(
            amount_rule,
            f"{field}.amount",
            f"the {kind} needs an amount, or a percentage and a base amount",
        )
    if ac.percentage is not None and ac.base_amount is None:
        problems.add(
            "PEPPOL-EN16931-R041", f"{field}.base_amount", "a percentage needs its base amount"
        )
    if ac.base_amount is not None and ac.percentage is None:
        problems.add(
            "PEPPOL-EN16931-R042", f"{field}.percentage", "a base amount needs its percentage"
        )
    if not ac.reason and not ac.reason_code:
        problems.add(
            reason_rule, f"{field}.reason", f"give the {kind} a reason text or a reason code"
        )
    if not line_level and not ac.vat_category:
        problems.add(
            "BR-37" if ac.is_charge else "BR-32",
            f"{field}.vat_category",
            f"a document-level {kind} needs a VAT category",
        )


def _check_payment(doc: Document, problems: Problems, rules_dir: Path | None) -> None:
    allowed = codes.payment_means_codes(rules_dir)
    for index, means in enumerate(doc.payment_means):
        field = f"payment_means[{index}]"
        if not means.code:
            problems.add(
                "BR-49",
                f"{field}.code",
                "the payment means type code is missing, e.g. '30' or '58'",
            )
            continue
        if (not means.code.isdigit() and means.code != "ZZZ") or (
            allowed is not None and means.code not in allowed
        ):
            problems.add(
                "BR-CL-16", f"{field}.code", f"{means.code!r} is not a UNCL 4461 payment means code"
            )
        if means.code in ("30", "58") and not means.iban:
            problems.add(
                "BR-61",
                f"{field}.iban",
                "a credit transfer needs the payee account identifier (IBAN)",
            )
        if means.code == "59" and not means.mandate_reference:
            problems.add(
                "PEPPOL-EN16931-R061",
                f"{field}.mandate_reference",
                "a direct debit needs its mandate reference",
            )


def _check_attachments(doc: Document, problems: Problems) -> None:
    for index, attachment in enumerate(doc.attachments):
        field = f"attachments[{index}]"
        if not attachment.id:
            problems.add("BR-52", f"{field}.id", "a supporting document needs a reference (id)")
        if attachment.content is not None and attachment.mime_code not in EMBEDDED_MIME_CODES:
            problems.add(
                "BR-CL-24",
                f"{field}.mime_code",
                f"{attachment.mime_code!r} is not allowed; "
                f"use one of {sorted(EMBEDDED_MIME_CODES)}",
            )
        if attachment.content is not None and not attachment.filename:
            problems.add(
                "UBL-DT-07",
                f"{field}.filename",
                "an embedded document needs its file name, e.g. 'INV-1.pdf'",
            )
    names = [a.filename.lower() for a in doc.attachments if a.content is not None and a.filename]
    if len(names) != len(set(names)):
        # DE-R-022 demands it between German parties; a duplicate confuses every receiver.
        problems.add(
            "DE-R-022",
            "attachments",
            "two embedded documents have the same file name; give each its own",
        )
