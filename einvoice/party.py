"""Parties, addresses and delivery: EN 16931 BG-4 .. BG-15.

Re-exported by :mod:`einvoice.model`; import them from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(slots=True, kw_only=True)
class Address:
    """A postal address (BG-5 seller, BG-8 buyer, BG-12 tax representative, BG-15 delivery).

    ``lines`` holds up to three address lines: the first is written as
    ``cbc:StreetName`` (BT-35), the second as ``cbc:AdditionalStreetName``
    (BT-36) and the third as ``cac:AddressLine/cbc:Line`` (BT-162).
    """

    lines: list[str] = field(default_factory=list)
    city: str | None = None  # BT-37
    postal_zone: str | None = None  # BT-38
    country_subdivision: str | None = None  # BT-39
    country_code: str = ""  # BT-40, ISO 3166-1 alpha-2, mandatory


@dataclass(slots=True, kw_only=True)
class Party:
    """A seller (BG-4), buyer (BG-7), payee (BG-10) or tax representative (BG-11).

    ``name`` is the legal name (BT-27 / BT-44 / BT-59 / BT-62), written as
    ``PartyLegalEntity/RegistrationName`` (payee and tax representative:
    ``PartyName/Name``); ``trading_name`` (BT-28 / BT-45) is ``PartyName/Name``.
    Not every field applies to every role; the writer uses what the role allows.
    """

    name: str
    trading_name: str | None = None
    endpoint_id: str | None = None  # BT-34 / BT-49 electronic address
    endpoint_scheme: str | None = None  # EAS code, e.g. "0088", "0192"
    # BT-29 / BT-46 / BT-60: (identifier, scheme or None). The SEPA creditor id
    # (BT-90) is not kept here but on PaymentMeans.creditor_id.
    identifiers: list[tuple[str, str | None]] = field(default_factory=list)
    vat_id: str | None = None  # BT-31 / BT-48 / BT-63, PartyTaxScheme with TaxScheme "VAT"
    tax_registration_id: str | None = None  # BT-32, PartyTaxScheme with another scheme
    tax_registration_scheme: str = "TAX"  # TaxScheme/ID written with BT-32
    legal_registration_id: str | None = None  # BT-30 / BT-47 / BT-61
    legal_registration_scheme: str | None = None  # ICD code of BT-30 / BT-47 / BT-61
    legal_form: str | None = None  # BT-33 additional legal information
    address: Address | None = None
    contact_name: str | None = None  # BT-41 / BT-56
    contact_phone: str | None = None  # BT-42 / BT-57
    contact_email: str | None = None  # BT-43 / BT-58


@dataclass(slots=True, kw_only=True)
class Delivery:
    """Delivery information (BG-13)."""

    date: date | None = None  # BT-72 actual delivery date
    location_id: str | None = None  # BT-71
    location_scheme: str | None = None  # scheme of BT-71
    address: Address | None = None  # BG-15
    party_name: str | None = None  # BT-70 deliver-to party name
