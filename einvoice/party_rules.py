"""Rules on the parties of a document: seller, buyer, payee, tax representative, delivery."""

from __future__ import annotations

import re

from einvoice.errors import InvoiceRuleError
from einvoice.model import Document, Party

__all__ = ["Problems", "check_other_parties", "check_party"]

_COUNTRY_PATTERN = re.compile(r"^[A-Z]{2}$")
_VAT_ID_PATTERN = re.compile(r"^[A-Z]{2}")


class Problems(list[InvoiceRuleError]):
    """A list of InvoiceRuleError with a shorthand to add one."""

    def add(self, rule: str, field: str, message: str) -> None:
        """Append ``InvoiceRuleError(rule, field, message)``."""
        self.append(InvoiceRuleError(rule, field, message))


def check_party(party: Party | None, field: str, problems: Problems, needs_address: bool) -> None:
    """Check a seller or buyer: name, electronic address, VAT id, address and country."""
    rule_name = {"seller": "BR-06", "buyer": "BR-07"}
    if party is None:
        problems.add(rule_name.get(field, "BR-06"), field, f"the {field} is missing")
        return
    if not party.name:
        problems.add(
            rule_name.get(field, "BR-06"), f"{field}.name", f"the {field}'s legal name is missing"
        )
    if field in ("seller", "buyer"):
        endpoint_rule, scheme_rule = (
            ("PEPPOL-EN16931-R020", "BR-62")
            if field == "seller"
            else ("PEPPOL-EN16931-R010", "BR-63")
        )
        if not party.endpoint_id:
            problems.add(
                endpoint_rule,
                f"{field}.endpoint_id",
                f"the {field}'s electronic address is missing",
            )
        elif not party.endpoint_scheme:
            problems.add(
                scheme_rule,
                f"{field}.endpoint_scheme",
                "give the EAS scheme of the electronic address, e.g. '0088'",
            )
    if party.vat_id and not _VAT_ID_PATTERN.match(party.vat_id):
        problems.add(
            "BR-CO-09",
            f"{field}.vat_id",
            "a VAT identifier starts with its ISO country prefix, e.g. 'SE'",
        )
    if needs_address:
        address_rule, country_rule = ("BR-08", "BR-09") if field == "seller" else ("BR-10", "BR-11")
        if party.address is None:
            problems.add(
                address_rule, f"{field}.address", f"the {field}'s postal address is missing"
            )
        elif not _COUNTRY_PATTERN.match(party.address.country_code or ""):
            problems.add(
                country_rule,
                f"{field}.address.country_code",
                f"give an ISO 3166-1 alpha-2 country code, not {party.address.country_code!r}",
            )


def check_other_parties(doc: Document, problems: Problems) -> None:
    """Check the payee, the tax representative and the delivery address."""
    if doc.payee is not None and not doc.payee.name:
        problems.add("BR-17", "payee.name", "the payee name is missing")
    rep = doc.tax_representative
    if rep is not None:
        if not rep.name:
            problems.add(
                "BR-18", "tax_representative.name", "the tax representative's name is missing"
            )
        if rep.address is None:
            problems.add(
                "BR-19", "tax_representative.address", "the tax representative's address is missing"
            )
        elif not _COUNTRY_PATTERN.match(rep.address.country_code or ""):
            problems.add(
                "BR-20", "tax_representative.address.country_code", "the country code is missing"
            )
        if not rep.vat_id:
            problems.add(
                "BR-56",
                "tax_representative.vat_id",
                "the tax representative's VAT identifier is missing",
            )
    delivery = doc.delivery
    if (
        delivery is not None
        and delivery.address is not None
        and not _COUNTRY_PATTERN.match(delivery.address.country_code or "")
    ):
        problems.add(
            "BR-57", "delivery.address.country_code", "a delivery address needs a country code"
        )
