"""Write a Document as a UBL 2.1 Invoice or CreditNote (Peppol BIS Billing 3.0).

Elements are emitted strictly in the order of the UBL 2.1 XSD sequences;
every amount carries its ``currencyID`` and every number is written without
an exponent.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from pathlib import Path

from einvoice.calc import compute
from einvoice.model import AllowanceCharge, Attachment, Document, DocumentKind, Line
from einvoice.rules import check
from einvoice.ubl.namespaces import CREDIT_NOTE_NS, INVOICE_NS
from einvoice.ubl.write_parties import (
    write_delivery,
    write_payee,
    write_payment_means,
    write_tax_representative,
    write_trading_party,
)
from einvoice.ubl.xmlbuild import Node, agg, amount, serialize, text

__all__ = ["write_ubl"]


def write_ubl(doc: Document, rules_dir: Path | None = None) -> bytes:
    """Return ``doc`` as UTF-8 UBL 2.1 XML bytes (Invoice, or CreditNote for credit notes).

    Missing derived amounts (VAT breakdown, totals, line net amounts) are
    computed first. Then :func:`einvoice.check` runs and the first problem is
    raised as :class:`~einvoice.errors.InvoiceRuleError`: nothing is written
    for an invalid document. ``rules_dir`` (else ``$EINVOICE_RULES_DIR``)
    enables the official unit and currency code lists. The rules are those the
    document declares in ``customization_id``: Peppol BIS Billing 3.0 (the
    default), or EN 16931 alone (:data:`~einvoice.model.EN16931_CUSTOMIZATION_ID`)
    for a buyer outside the Peppol network.
    """
    needs_compute = (
        doc.totals is None
        or not doc.vat_breakdown
        or any(line.net_amount is None for line in doc.lines)
        or any(ac.amount is None for ac in doc.allowances_charges)
        or any(ac.amount is None for line in doc.lines for ac in line.allowances_charges)
    )
    if needs_compute:
        doc = compute(doc, rules_dir=rules_dir)
    problems = check(doc, rules_dir)
    if problems:
        raise problems[0]
    if doc.kind is DocumentKind.CREDIT_NOTE:
        return serialize("CreditNote", CREDIT_NOTE_NS, _build(doc))
    return serialize("Invoice", INVOICE_NS, _build(doc))


def _build(doc: Document) -> Node:
    credit = doc.kind is DocumentKind.CREDIT_NOTE
    root: Node = []
    cur = doc.currency

    text(root, "CustomizationID", doc.customization_id)
    text(root, "ProfileID", doc.profile_id)
    text(root, "ID", doc.number)
    text(root, "IssueDate", doc.issue_date)
    if credit:
        text(root, "TaxPointDate", doc.tax_point_date)
        text(root, "CreditNoteTypeCode", doc.type_code)
    else:
        text(root, "DueDate", doc.due_date)
        text(root, "InvoiceTypeCode", doc.type_code)
    for note in doc.notes:
        text(root, "Note", note)
    if not credit:
        text(root, "TaxPointDate", doc.tax_point_date)
    text(root, "DocumentCurrencyCode", cur)
    text(root, "TaxCurrencyCode", doc.tax_currency)
    text(root, "AccountingCost", doc.accounting_cost)
    text(root, "BuyerReference", doc.buyer_reference)
    if doc.period_start or doc.period_end:
        period = agg(root, "InvoicePeriod")
        text(period, "StartDate", doc.period_start)
        text(period, "EndDate", doc.period_end)
    if doc.order_reference or doc.sales_order_reference:
        order = agg(root, "OrderReference")
        text(order, "ID", doc.order_reference or "NA")  # ID is mandatory; Peppol uses NA
        text(order, "SalesOrderID", doc.sales_order_reference)
    for number, issued in doc.preceding_invoices:
        reference = agg(agg(root, "BillingReference"), "InvoiceDocumentReference")
        text(reference, "ID", number)
        text(reference, "IssueDate", issued)
    _id_reference(root, "DespatchDocumentReference", doc.despatch_reference)
    _id_reference(root, "ReceiptDocumentReference", doc.receiving_reference)
    if not credit:
        _id_reference(root, "OriginatorDocumentReference", doc.tender_reference)
    _id_reference(root, "ContractDocumentReference", doc.contract_reference)
    for attachment in doc.attachments:
        write_attachment(root, attachment)
    if credit:
        if doc.project_reference:
            project = agg(root, "AdditionalDocumentReference")
            text(project, "ID", doc.project_reference)
            text(project, "DocumentTypeCode", "50")
        _id_reference(root, "OriginatorDocumentReference", doc.tender_reference)
    else:
        _id_reference(root, "ProjectReference", doc.project_reference)

    creditor_id = next(
        (m.creditor_id for m in doc.payment_means if m.code == "59" and m.creditor_id), None
    )
    write_trading_party(
        root, "AccountingSupplierParty", doc.seller, None if doc.payee else creditor_id
    )
    write_trading_party(root, "AccountingCustomerParty", doc.buyer)
    if doc.payee is not None:
        write_payee(root, doc.payee, creditor_id)
    if doc.tax_representative is not None:
        write_tax_representative(root, doc.tax_representative)
    if doc.delivery is not None:
        write_delivery(root, doc.delivery)
    for means in doc.payment_means:
        write_payment_means(root, means, doc)
    if doc.payment_terms:
        text(agg(root, "PaymentTerms"), "Note", doc.payment_terms)
    for ac in doc.allowances_charges:
        _allowance_charge(root, ac, cur, document_level=True)
    _tax_totals(root, doc)
    _monetary_total(root, doc)
    for line in doc.lines:
        _line(root, line, doc)
    return root


def _id_reference(parent: Node, name: str, value: str | None) -> None:
    if value:
        text(agg(parent, name), "ID", value)


def write_attachment(parent: Node, attachment: Attachment) -> Node:
    """Append an AdditionalDocumentReference (BG-24 / BT-18) to ``parent`` and return it."""
    element = agg(parent, "AdditionalDocumentReference")
    text(element, "ID", attachment.id, schemeID=attachment.id_scheme)
    text(element, "DocumentTypeCode", attachment.document_type_code)
    text(element, "DocumentDescription", attachment.description)
    if attachment.content is None and not attachment.uri:
        return element
    holder = agg(element, "Attachment")
    if attachment.content is not None:
        text(
            holder,
            "EmbeddedDocumentBinaryObject",
            base64.b64encode(attachment.content).decode("ascii"),
            mimeCode=attachment.mime_code or "application/octet-stream",
            filename=attachment.filename,
        )
    if attachment.uri:
        text(agg(holder, "ExternalReference"), "URI", attachment.uri)
    return element


def _tax_category(
    parent: Node,
    name: str,
    category: str | None,
    rate: Decimal | None,
    reason: str | None = None,
    code: str | None = None,
) -> None:
    element = agg(parent, name)
    text(element, "ID", category)
    if category != "O":
        text(element, "Percent", rate)
    text(element, "TaxExemptionReasonCode", code)
    text(element, "TaxExemptionReason", reason)
    text(agg(element, "TaxScheme"), "ID", "VAT")


def _allowance_charge(
    parent: Node, ac: AllowanceCharge, cur: str, document_level: bool
) -> None:
    element = agg(parent, "AllowanceCharge")
    text(element, "ChargeIndicator", ac.is_charge)
    text(element, "AllowanceChargeReasonCode", ac.reason_code)
    text(element, "AllowanceChargeReason", ac.reason)
    text(element, "MultiplierFactorNumeric", ac.percentage)
    amount(element, "Amount", ac.amount, cur)
    amount(element, "BaseAmount", ac.base_amount, cur)
    if document_level:
        _tax_category(element, "TaxCategory", ac.vat_category, ac.vat_rate)


def _tax_totals(root: Node, doc: Document) -> None:
    assert doc.totals is not None
    total = agg(root, "TaxTotal")
    amount(total, "TaxAmount", doc.totals.tax_total, doc.currency)
    for entry in doc.vat_breakdown:
        subtotal = agg(total, "TaxSubtotal")
        amount(subtotal, "TaxableAmount", entry.taxable_amount, doc.currency)
        amount(subtotal, "TaxAmount", entry.tax_amount, doc.currency)
        _tax_category(
            subtotal,
            "TaxCategory",
            entry.category,
            entry.rate,
            entry.exemption_reason,
            entry.exemption_reason_code,
        )
    if doc.tax_currency and doc.totals.tax_total_accounting is not None:
        amount(
            agg(root, "TaxTotal"), "TaxAmount", doc.totals.tax_total_accounting, doc.tax_currency
        )


def _monetary_total(root: Node, doc: Document) -> None:
    t = doc.totals
    assert t is not None
    cur = doc.currency
    element = agg(root, "LegalMonetaryTotal")
    amount(element, "LineExtensionAmount", t.line_extension, cur)
    amount(element, "TaxExclusiveAmount", t.tax_exclusive, cur)
    amount(element, "TaxInclusiveAmount", t.tax_inclusive, cur)
    amount(element, "AllowanceTotalAmount", t.allowance_total, cur)
    amount(element, "ChargeTotalAmount", t.charge_total, cur)
    amount(element, "PrepaidAmount", t.prepaid, cur)
    amount(element, "PayableRoundingAmount", t.rounding, cur)
    amount(element, "PayableAmount", t.payable, cur)


def _line(root: Node, line: Line, doc: Document) -> None:
    credit = doc.kind is DocumentKind.CREDIT_NOTE
    cur = doc.currency
    element = agg(root, "CreditNoteLine" if credit else "InvoiceLine")
    text(element, "ID", line.id)
    text(element, "Note", line.note)
    text(
        element,
        "CreditedQuantity" if credit else "InvoicedQuantity",
        line.quantity,
        unitCode=line.unit_code,
    )
    amount(element, "LineExtensionAmount", line.net_amount, cur)
    text(element, "AccountingCost", line.accounting_cost)
    if line.period_start or line.period_end:
        period = agg(element, "InvoicePeriod")
        text(period, "StartDate", line.period_start)
        text(period, "EndDate", line.period_end)
    if line.order_line_reference:
        text(agg(element, "OrderLineReference"), "LineID", line.order_line_reference)
    if line.object_id:
        reference = agg(element, "DocumentReference")
        text(reference, "ID", line.object_id, schemeID=line.object_scheme)
        text(reference, "DocumentTypeCode", "130")
    for ac in line.allowances_charges:
        _allowance_charge(element, ac, cur, document_level=False)

    item = agg(element, "Item")
    text(item, "Description", line.description)
    text(item, "Name", line.item_name)
    if line.buyer_item_id:
        text(agg(item, "BuyersItemIdentification"), "ID", line.buyer_item_id)
    if line.seller_item_id:
        text(agg(item, "SellersItemIdentification"), "ID", line.seller_item_id)
    if line.standard_item_id:
        text(
            agg(item, "StandardItemIdentification"),
            "ID",
            line.standard_item_id,
            schemeID=line.standard_item_scheme,
        )
    if line.origin_country:
        text(agg(item, "OriginCountry"), "IdentificationCode", line.origin_country)
    for code, list_id in line.classifications:
        text(agg(item, "CommodityClassification"), "ItemClassificationCode", code, listID=list_id)
    _tax_category(item, "ClassifiedTaxCategory", line.vat_category, line.vat_rate)
    for name, value in line.properties:
        prop = agg(item, "AdditionalItemProperty")
        text(prop, "Name", name)
        text(prop, "Value", value)

    price = agg(element, "Price")
    amount(price, "PriceAmount", line.net_price, cur)
    text(price, "BaseQuantity", line.base_quantity, unitCode=line.unit_code)
    if line.price_discount is not None or line.gross_price is not None:
        discount = agg(price, "AllowanceCharge")
        text(discount, "ChargeIndicator", False)
        gross = line.gross_price
        value = line.price_discount if line.price_discount is not None else gross - line.net_price
        amount(discount, "Amount", value, cur)
        amount(discount, "BaseAmount", gross, cur)
