"""Conversion between the portal's invoice records and ``einvoice`` Documents.

The portal owns the records; ``einvoice`` owns the business rules and the
arithmetic. Records are always filled from a Document that
:func:`einvoice.compute` has completed, so stored totals are the rule-conform ones.
"""

from __future__ import annotations

from decimal import Decimal

import einvoice
from einvoice.model import EN16931_CUSTOMIZATION_ID, PEPPOL_CUSTOMIZATION_ID, PEPPOL_PROFILE_ID
from portal.models import (
    AllowanceCharge,
    Customer,
    DocumentKind,
    Invoice,
    InvoiceLine,
    LineAllowanceCharge,
    Organisation,
)

ZERO = Decimal("0.00")


def seller_party(org: Organisation) -> einvoice.Party:
    """The seller as EN 16931 sees it (BG-4)."""
    return einvoice.Party(
        name=org.legal_name,
        trading_name=org.trading_name,
        endpoint_id=org.peppol_endpoint_id,
        endpoint_scheme=org.peppol_endpoint_scheme,
        vat_id=org.vat_id,
        legal_registration_id=org.legal_registration_id,
        address=einvoice.Address(
            lines=[v for v in (org.address_line1, org.address_line2) if v],
            city=org.city, postal_zone=org.postal_code,
            country_subdivision=org.country_subdivision, country_code=org.country_code,
        ),
        contact_email=org.email,
        contact_phone=org.phone,
    )


def specification(customer: Customer) -> dict[str, str]:
    """The specification a document for ``customer`` declares (BT-24, BT-23).

    Peppol BIS Billing 3.0 for a customer on Peppol. A customer outside it (a
    consumer, most of all) cannot meet Peppol's rules, which demand a buyer address
    from Peppol's own scheme list; their documents declare EN 16931 alone, whose
    rules they pass, instead of claiming a specification they break.
    """
    if customer.peppol_endpoint_id:
        return {"customization_id": PEPPOL_CUSTOMIZATION_ID,
                "profile_id": PEPPOL_PROFILE_ID}
    return {"customization_id": EN16931_CUSTOMIZATION_ID, "profile_id": ""}


def buyer_party(customer: Customer) -> einvoice.Party:
    """The customer as EN 16931 sees it (BG-7); its number is the buyer identifier.

    A customer without a Peppol ID gets their email address as electronic address
    (EAS code ``EM``, in EN 16931's list; such a document declares EN 16931 alone,
    see :func:`specification`).
    """
    endpoint = (customer.peppol_endpoint_scheme, customer.peppol_endpoint_id)
    if not customer.peppol_endpoint_id and customer.primary_email:
        endpoint = ("EM", customer.primary_email)
    return einvoice.Party(
        name=customer.name,
        endpoint_id=endpoint[1],
        endpoint_scheme=endpoint[0],
        identifiers=[(customer.number, None)],
        vat_id=customer.vat_id,
        legal_registration_id=customer.legal_registration_id,
        address=einvoice.Address(
            lines=[v for v in (customer.address_line1, customer.address_line2) if v],
            city=customer.city, postal_zone=customer.postal_code,
            country_subdivision=customer.country_subdivision,
            country_code=customer.country_code or "",
        ),
        contact_email=customer.primary_email,
    )


def document_from_invoice(invoice: Invoice) -> einvoice.Document:
    """The Document an invoice record stands for, with its stored amounts."""
    exemptions = {
        line.vat_category: einvoice.VatExemption(reason=line.vat_exemption_reason,
                                                 code=line.vat_exemption_reason_code)
        for line in reversed(invoice.lines)
        if line.vat_exemption_reason or line.vat_exemption_reason_code
    }
    payment_means = []
    if invoice.payment_means_code:
        payment_means.append(einvoice.PaymentMeans(
            code=invoice.payment_means_code, payment_id=invoice.payment_reference,
            iban=invoice.organisation.iban, bic=invoice.organisation.bic,
        ))
    return einvoice.Document(
        kind=einvoice.DocumentKind(invoice.kind.value),
        type_code=invoice.type_code,
        number=invoice.number,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        currency=invoice.currency,
        tax_currency=invoice.tax_currency,
        seller=seller_party(invoice.organisation),
        buyer=buyer_party(invoice.customer),
        buyer_reference=invoice.buyer_reference,
        order_reference=invoice.order_reference,
        preceding_invoices=(
            [(invoice.preceding_invoice_number, invoice.preceding_invoice_date)]
            if invoice.preceding_invoice_number else []
        ),
        notes=[invoice.note] if invoice.note else [],
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        payment_terms=invoice.payment_terms,
        payment_means=payment_means,
        vat_exemptions=exemptions,
        allowances_charges=[
            einvoice.AllowanceCharge(
                is_charge=item.is_charge, amount=item.amount, base_amount=item.base_amount,
                percentage=item.percentage, reason=item.reason, reason_code=item.reason_code,
                vat_category=item.vat_category, vat_rate=item.vat_rate,
            )
            for item in invoice.allowances_charges
        ],
        lines=[_line_document(line) for line in invoice.lines],
        **specification(invoice.customer),
    )


def _line_document(line: InvoiceLine) -> einvoice.Line:
    return einvoice.Line(
        id=line.line_id, quantity=line.quantity, unit_code=line.unit_code,
        net_price=line.net_price, base_quantity=line.base_quantity, item_name=line.item_name,
        description=line.description, seller_item_id=line.seller_item_id,
        vat_category=line.vat_category, vat_rate=line.vat_rate,
        period_start=line.period_start, period_end=line.period_end,
        net_amount=line.net_amount,
        allowances_charges=[
            einvoice.AllowanceCharge(
                is_charge=item.is_charge, amount=item.amount, base_amount=item.base_amount,
                percentage=item.percentage, reason=item.reason, reason_code=item.reason_code,
            )
            for item in line.allowances_charges
        ],
    )


def fill_invoice(invoice: Invoice, doc: einvoice.Document) -> Invoice:
    """Copy a computed Document's lines, allowances and totals onto ``invoice``."""
    if doc.totals is None:
        raise ValueError("fill_invoice needs a computed document (einvoice.compute)")
    invoice.kind = DocumentKind(doc.kind.value)
    invoice.type_code = doc.type_code
    invoice.number = doc.number
    invoice.issue_date = doc.issue_date
    invoice.due_date = doc.due_date
    invoice.currency = doc.currency
    invoice.tax_currency = doc.tax_currency
    invoice.buyer_reference = doc.buyer_reference
    invoice.order_reference = doc.order_reference
    if doc.preceding_invoices:
        invoice.preceding_invoice_number, invoice.preceding_invoice_date = doc.preceding_invoices[0]
    invoice.period_start, invoice.period_end = doc.period_start, doc.period_end
    invoice.payment_terms = doc.payment_terms
    invoice.note = "\n".join(doc.notes) or None
    invoice.lines = [_line_record(position, line, doc)
                     for position, line in enumerate(doc.lines, start=1)]
    invoice.allowances_charges = [
        AllowanceCharge(
            is_charge=item.is_charge, amount=item.amount, base_amount=item.base_amount,
            percentage=item.percentage, reason=item.reason, reason_code=item.reason_code,
            vat_category=item.vat_category, vat_rate=item.vat_rate,
        )
        for item in doc.allowances_charges
    ]
    totals = doc.totals
    invoice.line_extension_amount = totals.line_extension
    invoice.allowance_total = totals.allowance_total or ZERO
    invoice.charge_total = totals.charge_total or ZERO
    invoice.tax_exclusive_amount = totals.tax_exclusive
    invoice.tax_amount = totals.tax_total
    invoice.tax_inclusive_amount = totals.tax_inclusive
    invoice.prepaid_amount = totals.prepaid or ZERO
    invoice.rounding_amount = totals.rounding or ZERO
    invoice.payable_amount = totals.payable
    if totals.tax_total_accounting is not None:
        invoice.tax_amount_in_tax_currency = totals.tax_total_accounting
    return invoice


def _line_record(position: int, line: einvoice.Line, doc: einvoice.Document) -> InvoiceLine:
    exemption = doc.vat_exemptions.get(line.vat_category)
    return InvoiceLine(
        position=position, line_id=line.id, item_name=line.item_name,
        description=line.description, seller_item_id=line.seller_item_id,
        quantity=line.quantity, unit_code=line.unit_code, net_price=line.net_price,
        base_quantity=line.base_quantity, vat_category=line.vat_category, vat_rate=line.vat_rate,
        vat_exemption_reason=exemption.reason if exemption else None,
        vat_exemption_reason_code=exemption.code if exemption else None,
        period_start=line.period_start, period_end=line.period_end,
        net_amount=line.net_amount,
        allowances_charges=[
            LineAllowanceCharge(
                is_charge=item.is_charge, amount=item.amount, base_amount=item.base_amount,
                percentage=item.percentage, reason=item.reason, reason_code=item.reason_code,
            )
            for item in line.allowances_charges
        ],
    )
