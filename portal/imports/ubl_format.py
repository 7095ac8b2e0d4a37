"""Reads UBL 2.1 Invoice and CreditNote files (Peppol BIS Billing 3.0) through ``einvoice``."""

from __future__ import annotations

import re

import einvoice
from portal.imports.documents import CustomerInput, ImportedDocument, fingerprint
from portal.imports.problems import ImportRejected, Locator, Problem

# Totals the file states; Herald recomputes them and refuses the file when they differ.
STATED_TOTALS = (
    ("cbc:LineExtensionAmount", "line_extension"),
    ("cbc:TaxExclusiveAmount", "tax_exclusive"),
    ("cbc:TaxInclusiveAmount", "tax_inclusive"),
    ("cbc:PayableAmount", "payable"),
)


class UblLocator(Locator):
    """Names the UBL element a path inside the document stands for."""

    def __init__(self, file: str, root: str, number: str) -> None:
        super().__init__(file, f"{root} {number}")
        self.root = root
        self.line_element = "cac:CreditNoteLine" if root == "CreditNote" else "cac:InvoiceLine"

    def problem(self, path: str, message: str) -> Problem:
        match = re.match(r"lines\[(\d+)\]\.?(.*)", path)
        if match:
            element = f"/{self.root}/{self.line_element}[{int(match.group(1)) + 1}]"
            return Problem(self.file, element, match.group(2), message, self.document_label)
        if path.startswith(("customer", "buyer")):
            element = f"/{self.root}/cac:AccountingCustomerParty"
        elif path.startswith("seller"):
            element = f"/{self.root}/cac:AccountingSupplierParty"
        elif path.startswith("cac:LegalMonetaryTotal"):
            element, path = f"/{self.root}/{path}", ""
        else:
            element = f"/{self.root}"
        return Problem(self.file, element, path, message, self.document_label)


def read_ubl_file(data: bytes, file: str) -> list[ImportedDocument]:
    """The one document of a UBL file; raises ImportRejected naming the element."""
    try:
        doc = einvoice.read_ubl(data)
    except einvoice.UblReadError as exc:
        raise ImportRejected([Problem(file, exc.element, exc.field, exc.message)]) from exc
    root = "CreditNote" if doc.kind is einvoice.DocumentKind.CREDIT_NOTE else "Invoice"
    locator = UblLocator(file, root, doc.number)
    customer = _customer(doc.buyer)
    if customer is None:
        raise ImportRejected([locator.problem(
            "customer", "the buyer has no identifier Herald can use as customer number; add "
                        "cac:PartyIdentification/cbc:ID, a VAT ID or an EndpointID")])
    means = doc.payment_means[0] if doc.payment_means else None
    imported = ImportedDocument(
        locator=locator, kind=doc.kind, number=doc.number, status="issued",
        issue_date=doc.issue_date, due_date=doc.due_date, currency=doc.currency,
        customer=customer, lines=doc.lines, source="ubl",
        seller_vat_id=doc.seller.vat_id,
        seller_endpoint=((doc.seller.endpoint_scheme, doc.seller.endpoint_id)
                         if doc.seller.endpoint_id and not doc.seller.vat_id else None),
        tax_currency=doc.tax_currency,
        tax_amount_in_tax_currency=doc.totals.tax_total_accounting if doc.totals else None,
        buyer_reference=doc.buyer_reference, order_reference=doc.order_reference,
        preceding_invoice=doc.preceding_invoices[0] if doc.preceding_invoices else None,
        period_start=doc.period_start, period_end=doc.period_end,
        payment_terms=doc.payment_terms,
        payment_means_code=means.code if means else None,
        payment_reference=means.payment_id if means else None,
        note="\n".join(doc.notes) or None,
        allowances_charges=doc.allowances_charges,
        vat_exemptions=doc.vat_exemptions,
        fingerprint=fingerprint(data.decode("utf-8", "replace")),
        original_ubl=data,
        prepaid_amount=doc.totals.prepaid if doc.totals else None,
        rounding_amount=doc.totals.rounding if doc.totals else None,
    )
    if doc.totals is not None:
        imported.expected_amounts = [
            (f"cac:LegalMonetaryTotal/{element}", attribute, getattr(doc.totals, attribute))
            for element, attribute in STATED_TOTALS if getattr(doc.totals, attribute) is not None
        ]
    return [imported]


def _customer(buyer: einvoice.Party) -> CustomerInput | None:
    number = next((identifier for identifier, _ in buyer.identifiers if identifier),
                  None) or buyer.vat_id or buyer.endpoint_id
    if not number:
        return None
    address = buyer.address or einvoice.Address()
    return CustomerInput(
        number=number[:40], name=buyer.name, kind="business" if buyer.vat_id else None,
        email=buyer.contact_email, phone=buyer.contact_phone,
        address_lines=list(address.lines[:2]), city=address.city,
        postal_code=address.postal_zone, country_subdivision=address.country_subdivision,
        country_code=address.country_code or None, vat_id=buyer.vat_id,
        legal_registration_id=buyer.legal_registration_id,
        peppol_scheme=buyer.endpoint_scheme, peppol_id=buyer.endpoint_id,
    )
