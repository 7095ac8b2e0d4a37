"""Writers for the UBL party, address, delivery and payment elements."""

from __future__ import annotations

from einvoice.model import Address, Delivery, Document, DocumentKind, Party, PaymentMeans
from einvoice.ubl.xmlbuild import Node, agg, text


def write_address(parent: Node, name: str, address: Address | None) -> None:
    """Append a UBL address (PostalAddress / Address) in schema order."""
    if address is None:
        return
    element = agg(parent, name)
    lines = address.lines
    text(element, "StreetName", lines[0] if len(lines) > 0 else None)
    text(element, "AdditionalStreetName", lines[1] if len(lines) > 1 else None)
    text(element, "CityName", address.city)
    text(element, "PostalZone", address.postal_zone)
    text(element, "CountrySubentity", address.country_subdivision)
    if len(lines) > 2:
        text(agg(element, "AddressLine"), "Line", lines[2])
    text(agg(element, "Country"), "IdentificationCode", address.country_code)


def _tax_schemes(party_el: Node, party: Party) -> None:
    if party.vat_id:
        scheme = agg(party_el, "PartyTaxScheme")
        text(scheme, "CompanyID", party.vat_id)
        text(agg(scheme, "TaxScheme"), "ID", "VAT")
    if party.tax_registration_id:
        scheme = agg(party_el, "PartyTaxScheme")
        text(scheme, "CompanyID", party.tax_registration_id)
        text(agg(scheme, "TaxScheme"), "ID", party.tax_registration_scheme or "TAX")


def _identifiers(party_el: Node, party: Party, creditor_id: str | None) -> None:
    for identifier, scheme in party.identifiers:
        text(agg(party_el, "PartyIdentification"), "ID", identifier, schemeID=scheme)
    if creditor_id:
        text(agg(party_el, "PartyIdentification"), "ID", creditor_id, schemeID="SEPA")


def write_trading_party(
    parent: Node, role: str, party: Party, creditor_id: str | None = None
) -> None:
    """Append AccountingSupplierParty or AccountingCustomerParty (``role``) with its Party."""
    party_el = agg(agg(parent, role), "Party")
    text(party_el, "EndpointID", party.endpoint_id, schemeID=party.endpoint_scheme)
    _identifiers(party_el, party, creditor_id)
    if party.trading_name:
        text(agg(party_el, "PartyName"), "Name", party.trading_name)
    write_address(party_el, "PostalAddress", party.address)
    _tax_schemes(party_el, party)
    legal = agg(party_el, "PartyLegalEntity")
    text(legal, "RegistrationName", party.name)
    text(legal, "CompanyID", party.legal_registration_id, schemeID=party.legal_registration_scheme)
    text(legal, "CompanyLegalForm", party.legal_form)
    if party.contact_name or party.contact_phone or party.contact_email:
        contact = agg(party_el, "Contact")
        text(contact, "Name", party.contact_name)
        text(contact, "Telephone", party.contact_phone)
        text(contact, "ElectronicMail", party.contact_email)


def write_payee(parent: Node, payee: Party, creditor_id: str | None) -> None:
    """Append PayeeParty (BG-10): identifiers, name and legal registration id."""
    party_el = agg(parent, "PayeeParty")
    _identifiers(party_el, payee, creditor_id)
    text(agg(party_el, "PartyName"), "Name", payee.name)
    if payee.legal_registration_id:
        legal = agg(party_el, "PartyLegalEntity")
        text(
            legal,
            "CompanyID",
            payee.legal_registration_id,
            schemeID=payee.legal_registration_scheme,
        )


def write_tax_representative(parent: Node, rep: Party) -> None:
    """Append TaxRepresentativeParty (BG-11): name, address and VAT identifier."""
    party_el = agg(parent, "TaxRepresentativeParty")
    text(agg(party_el, "PartyName"), "Name", rep.name)
    write_address(party_el, "PostalAddress", rep.address)
    if rep.vat_id:
        scheme = agg(party_el, "PartyTaxScheme")
        text(scheme, "CompanyID", rep.vat_id)
        text(agg(scheme, "TaxScheme"), "ID", "VAT")


def write_delivery(parent: Node, delivery: Delivery) -> None:
    """Append Delivery (BG-13)."""
    element = agg(parent, "Delivery")
    text(element, "ActualDeliveryDate", delivery.date)
    if delivery.location_id or delivery.address:
        location = agg(element, "DeliveryLocation")
        text(location, "ID", delivery.location_id, schemeID=delivery.location_scheme)
        write_address(location, "Address", delivery.address)
    if delivery.party_name:
        text(agg(agg(element, "DeliveryParty"), "PartyName"), "Name", delivery.party_name)


def write_payment_means(parent: Node, means: PaymentMeans, doc: Document) -> None:
    """Append PaymentMeans (BG-16); a credit note's due date (BT-9) goes in PaymentDueDate."""
    element = agg(parent, "PaymentMeans")
    text(element, "PaymentMeansCode", means.code, name=means.text)
    if doc.kind is DocumentKind.CREDIT_NOTE:
        text(element, "PaymentDueDate", doc.due_date)
    text(element, "PaymentID", means.payment_id)
    if means.card_pan:
        card = agg(element, "CardAccount")
        text(card, "PrimaryAccountNumberID", means.card_pan)
        text(card, "NetworkID", means.card_network or "NA")  # mandatory in UBL
        text(card, "HolderName", means.card_holder)
    if means.iban:
        account = agg(element, "PayeeFinancialAccount")
        text(account, "ID", means.iban)
        text(account, "Name", means.account_name)
        if means.bic:
            text(agg(account, "FinancialInstitutionBranch"), "ID", means.bic)
    if means.mandate_reference or means.debited_account:
        mandate = agg(element, "PaymentMandate")
        text(mandate, "ID", means.mandate_reference)
        if means.debited_account:
            text(agg(mandate, "PayerFinancialAccount"), "ID", means.debited_account)
