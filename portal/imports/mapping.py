"""Turns one document in Herald's import format (a JSON object) into an ImportedDocument.

CSV rows are grouped into the same mapping first, so both formats share this
code and its messages.
"""

from __future__ import annotations

from typing import Any

import einvoice
from portal.imports.documents import CustomerInput, ImportedDocument, ValueReader, fingerprint
from portal.imports.problems import Locator

AMOUNT_DECIMALS = 2
QUANTITY_DECIMALS = 6
RATE_DECIMALS = 2


def document_from_mapping(data: dict[str, Any], locator: Locator, source: str) -> ImportedDocument:
    """Convert a schema-valid mapping; raises ImportRejected listing every bad value."""
    read = ValueReader(locator)
    customer = _customer(data["customer"])
    lines = [_line(read, line, f"lines[{i}]") for i, line in enumerate(data["lines"])]
    exemptions: dict[str, einvoice.VatExemption] = {}
    for line in data["lines"]:
        reason = line.get("vat_exemption_reason")
        code = line.get("vat_exemption_reason_code")
        if (reason or code) and line["vat_category"] not in exemptions:
            exemptions[line["vat_category"]] = einvoice.VatExemption(reason=reason, code=code)
    allowances = [
        _allowance_charge(read, item, f"allowances_charges[{i}]", document_level=True)
        for i, item in enumerate(data.get("allowances_charges", []))
    ]
    preceding = data.get("preceding_invoice")
    period = data.get("period") or {}
    doc = ImportedDocument(
        locator=locator,
        kind=einvoice.DocumentKind(data.get("type", "invoice")),
        number=data["number"].strip(),
        status=data.get("status", "issued"),
        issue_date=read.date(data["issue_date"], "issue_date", required=True),
        due_date=read.date(data.get("due_date"), "due_date"),
        currency=data["currency"],
        customer=customer,
        lines=lines,
        source=source,
        seller_vat_id=data.get("seller_vat_id"),
        account_number=data.get("account"),
        tax_currency=data.get("tax_currency"),
        tax_amount_in_tax_currency=read.decimal(
            data.get("tax_amount_in_tax_currency"), "tax_amount_in_tax_currency",
            decimals=AMOUNT_DECIMALS),
        buyer_reference=data.get("buyer_reference"),
        order_reference=data.get("order_reference"),
        preceding_invoice=(
            (preceding["number"], read.date(preceding.get("issue_date"),
                                            "preceding_invoice.issue_date"))
            if preceding else None
        ),
        period_start=read.date(period.get("start"), "period.start"),
        period_end=read.date(period.get("end"), "period.end"),
        payment_terms=data.get("payment_terms"),
        payment_reference=data.get("payment_reference"),
        note=data.get("note"),
        allowances_charges=allowances,
        vat_exemptions=exemptions,
        fingerprint=fingerprint(data),
    )
    expected = read.decimal(data.get("expected_payable_amount"), "expected_payable_amount",
                            decimals=AMOUNT_DECIMALS)
    if expected is not None:
        doc.expected_amounts.append(("expected_payable_amount", "payable", expected))
    if doc.tax_currency and doc.tax_amount_in_tax_currency is None:
        read.fail("tax_amount_in_tax_currency",
                  "is missing; with tax_currency, give the VAT total in that currency")
    if doc.kind is einvoice.DocumentKind.CREDIT_NOTE and preceding is None:
        read.fail("preceding_invoice", "is missing; a credit note names the invoice it corrects "
                                       "(preceding_invoice.number)")
    read.raise_if_any()
    return doc


def _customer(data: dict[str, Any]) -> CustomerInput:
    address = data.get("address") or {}
    peppol = data.get("peppol") or {}
    return CustomerInput(
        number=data["number"].strip(),
        name=data.get("name"),
        kind=data.get("kind"),
        email=(data.get("email") or "").strip().lower() or None,
        phone=data.get("phone"),
        language=data.get("language"),
        time_zone=data.get("time_zone"),
        address_lines=[v for v in (address.get("line1"), address.get("line2")) if v],
        city=address.get("city"),
        postal_code=address.get("postal_code"),
        country_subdivision=address.get("country_subdivision"),
        country_code=address.get("country_code"),
        vat_id=data.get("vat_id"),
        legal_registration_id=data.get("legal_registration_id"),
        peppol_scheme=peppol.get("scheme"),
        peppol_id=peppol.get("id"),
    )


def _line(read: ValueReader, data: dict[str, Any], path: str) -> einvoice.Line:
    period = data.get("period") or {}
    index = int(path[path.index("[") + 1 : -1])
    return einvoice.Line(
        id=data.get("id") or str(index + 1),
        item_name=data["item_name"],
        description=data.get("description"),
        seller_item_id=data.get("seller_item_id"),
        quantity=read.decimal(data["quantity"], f"{path}.quantity", decimals=QUANTITY_DECIMALS,
                              required=True),
        unit_code=data["unit_code"],
        net_price=read.decimal(data["net_price"], f"{path}.net_price",
                               decimals=QUANTITY_DECIMALS, required=True),
        base_quantity=read.decimal(data.get("base_quantity"), f"{path}.base_quantity",
                                   decimals=QUANTITY_DECIMALS),
        vat_category=data["vat_category"],
        vat_rate=read.decimal(data.get("vat_rate"), f"{path}.vat_rate", decimals=RATE_DECIMALS,
                              negative=False),
        period_start=read.date(period.get("start"), f"{path}.period.start"),
        period_end=read.date(period.get("end"), f"{path}.period.end"),
        allowances_charges=[
            _allowance_charge(read, item, f"{path}.allowances_charges[{i}]", document_level=False)
            for i, item in enumerate(data.get("allowances_charges", []))
        ],
    )


def _allowance_charge(read: ValueReader, data: dict[str, Any], path: str, *,
                      document_level: bool) -> einvoice.AllowanceCharge:
    amount = read.decimal(data.get("amount"), f"{path}.amount", decimals=AMOUNT_DECIMALS,
                          negative=False)
    percentage = read.decimal(data.get("percentage"), f"{path}.percentage",
                              decimals=RATE_DECIMALS, negative=False)
    base = read.decimal(data.get("base_amount"), f"{path}.base_amount", decimals=AMOUNT_DECIMALS,
                        negative=False)
    if amount is None and (percentage is None or base is None):
        read.fail(f"{path}.amount", "is missing; give the amount, or a percentage and "
                                    "base_amount to compute it from")
    if not data.get("reason") and not data.get("reason_code"):
        read.fail(f"{path}.reason", "is missing; say why (reason) or give a reason_code")
    if document_level and not data.get("vat_category"):
        read.fail(f"{path}.vat_category", "is missing; a document-level allowance or charge "
                                          "needs its VAT category (e.g. S)")
    return einvoice.AllowanceCharge(
        is_charge=data["kind"] == "charge",
        amount=amount,
        base_amount=base,
        percentage=percentage,
        reason=data.get("reason"),
        reason_code=data.get("reason_code"),
        vat_category=data.get("vat_category") if document_level else None,
        vat_rate=read.decimal(data.get("vat_rate"), f"{path}.vat_rate", decimals=RATE_DECIMALS,
                              negative=False) if document_level else None,
    )
