"""Read a UBL 2.1 Invoice or CreditNote (Peppol BIS Billing 3.0) into a Document.

The parser is hardened: no entity expansion, no network, no huge trees, and
documents with a DOCTYPE are refused (UBL never has one), so XXE and
"billion laughs" inputs fail cleanly with :class:`~einvoice.errors.UblReadError`.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date
from decimal import Decimal

from lxml import etree

from einvoice.errors import UblReadError
from einvoice.model import (
    Attachment,
    Document,
    DocumentKind,
    Totals,
    VatBreakdown,
    VatExemption,
    follows_peppol,
)
from einvoice.ubl.namespaces import CBC_NS, CREDIT_NOTE_NS, INVOICE_NS
from einvoice.ubl.read_lines import read_allowance_charge, read_line
from einvoice.ubl.read_parties import (
    read_delivery,
    read_payee,
    read_payment_means,
    read_tax_representative,
    read_trading_party,
)
from einvoice.ubl.xmlread import Node

__all__ = ["declares_peppol", "read_ubl"]

_ROOTS = {
    f"{{{INVOICE_NS}}}Invoice": DocumentKind.INVOICE,
    f"{{{CREDIT_NOTE_NS}}}CreditNote": DocumentKind.CREDIT_NOTE,
}
_PROJECT_TYPE = "50"


def parse_safely(data: bytes) -> etree._Element:
    """Parse untrusted XML bytes with the hardened parser; UblReadError when unusable."""
    if not isinstance(data, bytes | bytearray):
        raise UblReadError("/", "", f"expected bytes, got {type(data).__name__}")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
    )
    try:
        root = etree.fromstring(bytes(data), parser)
    except etree.XMLSyntaxError as exc:
        raise UblReadError("/", "", f"not well-formed XML: {exc}") from None
    if root is None:
        raise UblReadError("/", "", "empty document")
    if root.getroottree().docinfo.doctype:
        raise UblReadError(
            "/", "", "a DOCTYPE declaration is not allowed in UBL (possible entity attack)"
        )
    return root


def declares_peppol(data: bytes) -> bool:
    """True when UBL bytes declare Peppol BIS Billing 3.0 (BT-24); UblReadError if unreadable."""
    return follows_peppol(parse_safely(data).findtext(f"{{{CBC_NS}}}CustomizationID"))


def read_ubl(data: bytes) -> Document:
    """Parse UBL 2.1 Invoice or CreditNote bytes into a Document.

    Reads every EN 16931 business term the model holds, as written; it does
    not run the business rules (use :func:`einvoice.check`). Raises
    :class:`~einvoice.errors.UblReadError` for non-XML input, a root element
    other than Invoice/CreditNote, a missing mandatory element (ID,
    IssueDate, DocumentCurrencyCode, seller name, buyer name, at least one
    line, a line's ID, quantity or price) and malformed numbers, dates or
    booleans; ``.element`` locates the problem.
    """
    element = parse_safely(data)
    kind = _ROOTS.get(element.tag)
    if kind is None:
        raise UblReadError(
            "/" + etree.QName(element).localname,
            "kind",
            f"root element {element.tag!r} is neither a UBL 2.1 Invoice nor CreditNote",
        )
    credit = kind is DocumentKind.CREDIT_NOTE
    root = Node(element, "/CreditNote" if credit else "/Invoice")

    seller, seller_creditors = read_trading_party(root, "AccountingSupplierParty", "seller")
    buyer, _ = read_trading_party(root, "AccountingCustomerParty", "buyer")
    payee, payee_creditors = read_payee(root)
    creditors = payee_creditors or seller_creditors
    payment_means = read_payment_means(root, creditors)
    if not any(means.code == "59" for means in payment_means):
        # Not a direct debit: keep SEPA identifiers as ordinary identifiers.
        seller.identifiers += [(value, "SEPA") for value in seller_creditors]
        if payee is not None:
            payee.identifiers += [(value, "SEPA") for value in payee_creditors]

    attachments, project = _attachments(root)
    due_date = (
        root.date("cac:PaymentMeans/cbc:PaymentDueDate", "due_date")
        if credit
        else root.date("cbc:DueDate", "due_date")
    )
    type_tag = "cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode"
    breakdown, tax_total, tax_total_accounting = _taxes(root)
    doc = Document(
        kind=kind,
        number=root.required_text("cbc:ID", "number", "invoice number (cbc:ID)"),
        issue_date=root.date("cbc:IssueDate", "issue_date", required="issue date (cbc:IssueDate)"),
        currency=root.required_text(
            "cbc:DocumentCurrencyCode", "currency", "document currency code"
        ),
        seller=seller,
        buyer=buyer,
        type_code=root.text(type_tag) or "",
        tax_currency=root.text("cbc:TaxCurrencyCode"),
        due_date=due_date,
        tax_point_date=root.date("cbc:TaxPointDate", "tax_point_date"),
        buyer_reference=root.text("cbc:BuyerReference"),
        project_reference=root.text("cac:ProjectReference/cbc:ID") or project,
        contract_reference=root.text("cac:ContractDocumentReference/cbc:ID"),
        order_reference=root.text("cac:OrderReference/cbc:ID"),
        sales_order_reference=root.text("cac:OrderReference/cbc:SalesOrderID"),
        receiving_reference=root.text("cac:ReceiptDocumentReference/cbc:ID"),
        despatch_reference=root.text("cac:DespatchDocumentReference/cbc:ID"),
        tender_reference=root.text("cac:OriginatorDocumentReference/cbc:ID"),
        preceding_invoices=_preceding_invoices(root),
        notes=[
            note.element.text.strip()
            for note in root.children("cbc:Note")
            if (note.element.text or "").strip()
        ],
        accounting_cost=root.text("cbc:AccountingCost"),
        period_start=root.date("cac:InvoicePeriod/cbc:StartDate", "period_start"),
        period_end=root.date("cac:InvoicePeriod/cbc:EndDate", "period_end"),
        payee=payee,
        tax_representative=read_tax_representative(root),
        delivery=read_delivery(root),
        payment_means=payment_means,
        payment_terms=root.text("cac:PaymentTerms/cbc:Note"),
        allowances_charges=[
            read_allowance_charge(node, f"allowances_charges[{index}]", document_level=True)
            for index, node in enumerate(root.children("cac:AllowanceCharge"))
        ],
        vat_exemptions={
            entry.category: VatExemption(
                reason=entry.exemption_reason, code=entry.exemption_reason_code
            )
            for entry in breakdown
            if entry.exemption_reason or entry.exemption_reason_code
        },
        vat_breakdown=breakdown,
        attachments=attachments,
        customization_id=root.text("cbc:CustomizationID") or "",
        profile_id=root.text("cbc:ProfileID") or "",
    )
    doc.totals = _totals(root, tax_total, tax_total_accounting)
    line_tag = "cac:CreditNoteLine" if credit else "cac:InvoiceLine"
    nodes = root.children(line_tag)
    if not nodes:
        raise UblReadError(
            root.location(line_tag), "lines", "missing mandatory element: at least one line"
        )
    doc.lines = [read_line(node, f"lines[{index}]", credit) for index, node in enumerate(nodes)]
    return doc


def _preceding_invoices(root: Node) -> list[tuple[str, date | None]]:
    result = []
    for billing in root.children("cac:BillingReference"):
        ref = billing.find("cac:InvoiceDocumentReference")
        if ref is not None:
            field = f"preceding_invoices[{len(result)}]"
            result.append(
                (ref.text("cbc:ID") or "", ref.date("cbc:IssueDate", f"{field}.issue_date"))
            )
    return result


def _attachments(root: Node) -> tuple[list[Attachment], str | None]:
    attachments = []
    project = None
    for index, node in enumerate(root.children("cac:AdditionalDocumentReference")):
        field = f"attachments[{index}]"
        type_code = node.text("cbc:DocumentTypeCode")
        if type_code == _PROJECT_TYPE and project is None:
            project = node.text("cbc:ID")
            continue
        content = None
        binary = node.find("cac:Attachment/cbc:EmbeddedDocumentBinaryObject")
        if binary is not None:
            try:
                content = base64.b64decode((binary.element.text or "").strip(), validate=True)
            except (binascii.Error, ValueError):
                raise UblReadError(binary.path, f"{field}.content", "not valid base64") from None
        attachments.append(
            Attachment(
                id=node.text("cbc:ID") or "",
                id_scheme=node.attr("cbc:ID", "schemeID"),
                document_type_code=type_code,
                description=node.text("cbc:DocumentDescription"),
                mime_code=binary.element.get("mimeCode") if binary is not None else None,
                filename=binary.element.get("filename") if binary is not None else None,
                content=content,
                uri=node.text("cac:Attachment/cac:ExternalReference/cbc:URI"),
            )
        )
    return attachments, project


def _taxes(root: Node) -> tuple[list[VatBreakdown], Decimal | None, Decimal | None]:
    breakdown: list[VatBreakdown] = []
    tax_total = None
    accounting = None
    currency = root.text("cbc:DocumentCurrencyCode")
    for total in root.children("cac:TaxTotal"):
        subtotals = total.children("cac:TaxSubtotal")
        value = total.decimal("cbc:TaxAmount", "totals.tax_total", required="tax amount")
        if subtotals or (
            tax_total is None and total.attr("cbc:TaxAmount", "currencyID") == currency
        ):
            tax_total = value
        else:
            accounting = value
        for index, sub in enumerate(subtotals, len(breakdown)):
            field = f"vat_breakdown[{index}]"
            breakdown.append(
                VatBreakdown(
                    category=sub.required_text(
                        "cac:TaxCategory/cbc:ID", f"{field}.category", "VAT category code"
                    ),
                    rate=sub.decimal("cac:TaxCategory/cbc:Percent", f"{field}.rate"),
                    taxable_amount=sub.decimal(
                        "cbc:TaxableAmount", f"{field}.taxable_amount", required="taxable amount"
                    ),
                    tax_amount=sub.decimal(
                        "cbc:TaxAmount", f"{field}.tax_amount", required="tax amount"
                    ),
                    exemption_reason=sub.text("cac:TaxCategory/cbc:TaxExemptionReason"),
                    exemption_reason_code=sub.text("cac:TaxCategory/cbc:TaxExemptionReasonCode"),
                )
            )
    return breakdown, tax_total, accounting


def _totals(
    root: Node, tax_total: Decimal | None, tax_total_accounting: Decimal | None
) -> Totals | None:
    node = root.find("cac:LegalMonetaryTotal")
    if node is None:
        return None

    def need(name: str, field: str):
        return node.decimal(f"cbc:{name}", f"totals.{field}", required=name)

    exclusive = need("TaxExclusiveAmount", "tax_exclusive")
    inclusive = need("TaxInclusiveAmount", "tax_inclusive")
    return Totals(
        line_extension=need("LineExtensionAmount", "line_extension"),
        tax_exclusive=exclusive,
        tax_total=tax_total if tax_total is not None else inclusive - exclusive,
        tax_inclusive=inclusive,
        payable=need("PayableAmount", "payable"),
        allowance_total=node.decimal("cbc:AllowanceTotalAmount", "totals.allowance_total"),
        charge_total=node.decimal("cbc:ChargeTotalAmount", "totals.charge_total"),
        tax_total_accounting=tax_total_accounting,
        prepaid=node.decimal("cbc:PrepaidAmount", "totals.prepaid"),
        rounding=node.decimal("cbc:PayableRoundingAmount", "totals.rounding"),
    )
