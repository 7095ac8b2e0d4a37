"""Readers for UBL invoice/credit note lines and allowances/charges."""

from __future__ import annotations

from einvoice.model import AllowanceCharge, Line
from einvoice.ubl.xmlread import Node

__all__ = ["read_allowance_charge", "read_line"]


def read_allowance_charge(node: Node, field: str, document_level: bool) -> AllowanceCharge:
    """Read a cac:AllowanceCharge; the VAT category only at document level."""
    return AllowanceCharge(
        is_charge=node.boolean("cbc:ChargeIndicator", f"{field}.is_charge", "charge indicator"),
        amount=node.decimal("cbc:Amount", f"{field}.amount", required="allowance/charge amount"),
        base_amount=node.decimal("cbc:BaseAmount", f"{field}.base_amount"),
        percentage=node.decimal("cbc:MultiplierFactorNumeric", f"{field}.percentage"),
        reason=node.text("cbc:AllowanceChargeReason"),
        reason_code=node.text("cbc:AllowanceChargeReasonCode"),
        vat_category=node.text("cac:TaxCategory/cbc:ID") if document_level else None,
        vat_rate=node.decimal("cac:TaxCategory/cbc:Percent", f"{field}.vat_rate")
        if document_level
        else None,
    )


def read_line(node: Node, field: str, credit: bool) -> Line:
    """Read a cac:InvoiceLine or cac:CreditNoteLine into a Line."""
    quantity_tag = "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity"
    item = node.find("cac:Item")
    price = node.require("cac:Price", f"{field}.net_price", "price (cac:Price)")
    discount = price.find("cac:AllowanceCharge")
    object_ref = next(
        (
            ref
            for ref in node.children("cac:DocumentReference")
            if ref.text("cbc:DocumentTypeCode") == "130"
        ),
        None,
    )
    return Line(
        id=node.required_text("cbc:ID", f"{field}.id", "line identifier"),
        quantity=node.decimal(quantity_tag, f"{field}.quantity", required="invoiced quantity"),
        unit_code=node.attr(quantity_tag, "unitCode") or "",
        net_price=price.decimal("cbc:PriceAmount", f"{field}.net_price", required="item net price"),
        base_quantity=price.decimal("cbc:BaseQuantity", f"{field}.base_quantity"),
        gross_price=discount.decimal("cbc:BaseAmount", f"{field}.gross_price")
        if discount
        else None,
        price_discount=discount.decimal("cbc:Amount", f"{field}.price_discount")
        if discount
        else None,
        item_name=(item.text("cbc:Name") if item else None) or "",
        description=item.text("cbc:Description") if item else None,
        seller_item_id=item.text("cac:SellersItemIdentification/cbc:ID") if item else None,
        buyer_item_id=item.text("cac:BuyersItemIdentification/cbc:ID") if item else None,
        standard_item_id=item.text("cac:StandardItemIdentification/cbc:ID") if item else None,
        standard_item_scheme=item.attr("cac:StandardItemIdentification/cbc:ID", "schemeID")
        if item
        else None,
        classifications=[
            (
                c.text("cbc:ItemClassificationCode") or "",
                c.attr("cbc:ItemClassificationCode", "listID"),
            )
            for c in (item.children("cac:CommodityClassification") if item else [])
        ],
        origin_country=item.text("cac:OriginCountry/cbc:IdentificationCode") if item else None,
        properties=[
            (p.text("cbc:Name") or "", p.text("cbc:Value") or "")
            for p in (item.children("cac:AdditionalItemProperty") if item else [])
        ],
        vat_category=(item.text("cac:ClassifiedTaxCategory/cbc:ID") if item else None) or "",
        vat_rate=item.decimal("cac:ClassifiedTaxCategory/cbc:Percent", f"{field}.vat_rate")
        if item
        else None,
        allowances_charges=[
            read_allowance_charge(ac, f"{field}.allowances_charges[{index}]", document_level=False)
            for index, ac in enumerate(node.children("cac:AllowanceCharge"))
        ],
        note=node.text("cbc:Note"),
        period_start=node.date("cac:InvoicePeriod/cbc:StartDate", f"{field}.period_start"),
        period_end=node.date("cac:InvoicePeriod/cbc:EndDate", f"{field}.period_end"),
        order_line_reference=node.text("cac:OrderLineReference/cbc:LineID"),
        accounting_cost=node.text("cbc:AccountingCost"),
        object_id=object_ref.text("cbc:ID") if object_ref else None,
        object_scheme=object_ref.attr("cbc:ID", "schemeID") if object_ref else None,
        net_amount=node.decimal("cbc:LineExtensionAmount", f"{field}.net_amount"),
    )
