"""Readers for UBL parties, addresses, delivery and payment means."""

from __future__ import annotations

from einvoice.model import Address, Delivery, Party, PaymentMeans
from einvoice.ubl.xmlread import Node

SEPA = "SEPA"


def read_address(node: Node | None) -> Address | None:
    """Read a UBL PostalAddress / Address into an Address (None when absent)."""
    if node is None:
        return None
    lines = [node.text("cbc:StreetName") or "", node.text("cbc:AdditionalStreetName") or ""]
    lines.append(node.text("cac:AddressLine/cbc:Line") or "")
    while lines and not lines[-1]:
        lines.pop()
    return Address(
        lines=lines,
        city=node.text("cbc:CityName"),
        postal_zone=node.text("cbc:PostalZone"),
        country_subdivision=node.text("cbc:CountrySubentity"),
        country_code=node.text("cac:Country/cbc:IdentificationCode") or "",
    )


def _identifiers(party: Node) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Party identifiers, and SEPA creditor identifiers (BT-90) separately."""
    identifiers: list[tuple[str, str | None]] = []
    creditors: list[str] = []
    for ident in party.children("cac:PartyIdentification"):
        value = ident.text("cbc:ID")
        if value is None:
            continue
        scheme = ident.attr("cbc:ID", "schemeID")
        if scheme == SEPA:
            creditors.append(value)
        else:
            identifiers.append((value, scheme))
    return identifiers, creditors


def _tax_schemes(party: Node, result: Party) -> None:
    for scheme in party.children("cac:PartyTaxScheme"):
        company_id = scheme.text("cbc:CompanyID")
        scheme_id = scheme.text("cac:TaxScheme/cbc:ID")
        if scheme_id == "VAT":
            result.vat_id = company_id
        else:
            result.tax_registration_id = company_id
            result.tax_registration_scheme = scheme_id or "TAX"


def read_trading_party(root: Node, role: str, field: str) -> tuple[Party, list[str]]:
    """Read AccountingSupplierParty or AccountingCustomerParty; also return SEPA creditor ids."""
    what = "seller" if field == "seller" else "buyer"
    party = root.require(f"cac:{role}/cac:Party", field, f"{what} party (cac:{role}/cac:Party)")
    name = party.required_text(
        "cac:PartyLegalEntity/cbc:RegistrationName",
        f"{field}.name",
        f"{what} name (legal registration name)",
    )
    identifiers, creditors = _identifiers(party)
    result = Party(
        name=name,
        trading_name=party.text("cac:PartyName/cbc:Name"),
        endpoint_id=party.text("cbc:EndpointID"),
        endpoint_scheme=party.attr("cbc:EndpointID", "schemeID"),
        identifiers=identifiers,
        legal_registration_id=party.text("cac:PartyLegalEntity/cbc:CompanyID"),
        legal_registration_scheme=party.attr("cac:PartyLegalEntity/cbc:CompanyID", "schemeID"),
        legal_form=party.text("cac:PartyLegalEntity/cbc:CompanyLegalForm"),
        address=read_address(party.find("cac:PostalAddress")),
        contact_name=party.text("cac:Contact/cbc:Name"),
        contact_phone=party.text("cac:Contact/cbc:Telephone"),
        contact_email=party.text("cac:Contact/cbc:ElectronicMail"),
    )
    _tax_schemes(party, result)
    return result, creditors


def read_payee(root: Node) -> tuple[Party | None, list[str]]:
    """Read PayeeParty (BG-10) and its SEPA creditor ids; (None, []) when absent."""
    party = root.find("cac:PayeeParty")
    if party is None:
        return None, []
    identifiers, creditors = _identifiers(party)
    payee = Party(
        name=party.text("cac:PartyName/cbc:Name") or "",
        identifiers=identifiers,
        legal_registration_id=party.text("cac:PartyLegalEntity/cbc:CompanyID"),
        legal_registration_scheme=party.attr("cac:PartyLegalEntity/cbc:CompanyID", "schemeID"),
    )
    return payee, creditors


def read_tax_representative(root: Node) -> Party | None:
    """Read TaxRepresentativeParty (BG-11), or None."""
    party = root.find("cac:TaxRepresentativeParty")
    if party is None:
        return None
    result = Party(
        name=party.text("cac:PartyName/cbc:Name") or "",
        address=read_address(party.find("cac:PostalAddress")),
    )
    _tax_schemes(party, result)
    return result


def read_delivery(root: Node) -> Delivery | None:
    """Read Delivery (BG-13), or None."""
    node = root.find("cac:Delivery")
    if node is None:
        return None
    return Delivery(
        date=node.date("cbc:ActualDeliveryDate", "delivery.date"),
        location_id=node.text("cac:DeliveryLocation/cbc:ID"),
        location_scheme=node.attr("cac:DeliveryLocation/cbc:ID", "schemeID"),
        address=read_address(node.find("cac:DeliveryLocation/cac:Address")),
        party_name=node.text("cac:DeliveryParty/cac:PartyName/cbc:Name"),
    )


def read_payment_means(root: Node, creditors: list[str]) -> list[PaymentMeans]:
    """Read every PaymentMeans (BG-16); SEPA ``creditors`` go to direct debits (code 59)."""
    result = []
    for index, node in enumerate(root.children("cac:PaymentMeans")):
        code = node.required_text(
            "cbc:PaymentMeansCode", f"payment_means[{index}].code", "payment means code"
        )
        result.append(
            PaymentMeans(
                code=code,
                text=node.attr("cbc:PaymentMeansCode", "name"),
                payment_id=node.text("cbc:PaymentID"),
                iban=node.text("cac:PayeeFinancialAccount/cbc:ID"),
                account_name=node.text("cac:PayeeFinancialAccount/cbc:Name"),
                bic=node.text("cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID"),
                card_pan=node.text("cac:CardAccount/cbc:PrimaryAccountNumberID"),
                card_network=node.text("cac:CardAccount/cbc:NetworkID"),
                card_holder=node.text("cac:CardAccount/cbc:HolderName"),
                mandate_reference=node.text("cac:PaymentMandate/cbc:ID"),
                creditor_id=creditors[0] if code == "59" and creditors else None,
                debited_account=node.text("cac:PaymentMandate/cac:PayerFinancialAccount/cbc:ID"),
            )
        )
    return result
