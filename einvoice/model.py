"""The EN 16931 invoice model: business terms (BT-n) and groups (BG-n) as dataclasses.

Amounts, quantities, prices and rates are :class:`decimal.Decimal`, never float.
Optional amounts left as ``None`` are filled by :func:`einvoice.compute`.
Field comments name the EN 16931 business term each field carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from einvoice.party import Address, Delivery, Party

__all__ = [
    "EN16931_CUSTOMIZATION_ID",
    "PEPPOL_CUSTOMIZATION_ID",
    "PEPPOL_PROFILE_ID",
    "Address",
    "AllowanceCharge",
    "Attachment",
    "Delivery",
    "Document",
    "DocumentKind",
    "Line",
    "Party",
    "PaymentMeans",
    "Totals",
    "VatBreakdown",
    "VatExemption",
    "follows_peppol",
]

PEPPOL_CUSTOMIZATION_ID = (
    "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
)
PEPPOL_PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
#: EN 16931 itself, with no CIUS: for a buyer outside the Peppol network. Peppol BIS
#: demands a buyer electronic address from Peppol's own scheme list (PEPPOL-EN16931-R010,
#: CL008), which a consumer does not have; claiming Peppol BIS anyway would make the
#: document fail the rules it declares. Such a document has no ProfileID (BT-23 is
#: optional in EN 16931).
EN16931_CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017"


def follows_peppol(customization_id: str | None) -> bool:
    """True when a specification identifier (BT-24) declares Peppol BIS Billing 3.0."""
    return (customization_id or "").strip().startswith(PEPPOL_CUSTOMIZATION_ID)


class DocumentKind(StrEnum):
    """Which UBL document a :class:`Document` is written as."""

    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


@dataclass(slots=True, kw_only=True)
class PaymentMeans:
    """Payment instructions (BG-16).

    ``code`` (BT-81, UNCL 4461) selects which fields apply:
    ``"30"``/``"58"`` credit transfer (BG-17: ``iban``, ``account_name``, ``bic``),
    ``"59"`` SEPA direct debit (BG-19: ``mandate_reference``, ``creditor_id``,
    ``debited_account``), ``"48"``/``"54"``/``"55"`` payment card (BG-18:
    ``card_pan`` (last digits only), ``card_network``, ``card_holder``).
    """

    code: str
    text: str | None = None  # BT-82 payment means text (the code's name attribute)
    payment_id: str | None = None  # BT-83 remittance information / structured reference
    iban: str | None = None  # BT-84 payee account identifier (IBAN or other)
    account_name: str | None = None  # BT-85
    bic: str | None = None  # BT-86 payment service provider identifier
    card_pan: str | None = None  # BT-87 last 4 to 6 digits of the card number
    card_network: str | None = None  # network id, e.g. "VISA"
    card_holder: str | None = None  # BT-88
    mandate_reference: str | None = None  # BT-89
    creditor_id: str | None = None  # BT-90 bank assigned creditor identifier (SEPA)
    debited_account: str | None = None  # BT-91


@dataclass(slots=True, kw_only=True)
class AllowanceCharge:
    """An allowance or charge, on the document (BG-20/BG-21) or on a line (BG-27/BG-28).

    Give ``amount``, or ``percentage`` and ``base_amount`` (``amount`` is then
    computed as base × percentage / 100, rounded to cents). ``vat_category`` and
    ``vat_rate`` apply to document-level allowances and charges only.
    """

    is_charge: bool
    amount: Decimal | None = None  # BT-92 / BT-99 / BT-136 / BT-141
    base_amount: Decimal | None = None  # BT-93 / BT-100 / BT-137 / BT-142
    percentage: Decimal | None = None  # BT-94 / BT-101 / BT-138 / BT-143
    reason: str | None = None  # BT-97 / BT-104 / BT-139 / BT-144
    reason_code: str | None = None  # BT-98 / BT-105 / BT-140 / BT-145 (UNCL 5189 / 7161)
    vat_category: str | None = None  # BT-95 / BT-102
    vat_rate: Decimal | None = None  # BT-96 / BT-103


@dataclass(slots=True, kw_only=True)
class Line:
    """An invoice line (BG-25) with its price (BG-29) and item (BG-31).

    ``base_quantity`` (BT-149) ``None`` means 1. ``net_amount`` (BT-131)
    ``None`` means "compute it": quantity × net_price / base_quantity
    − allowances + charges, rounded half-up to cents.
    """

    id: str  # BT-126
    quantity: Decimal  # BT-129
    unit_code: str  # BT-130, UN/ECE Rec 20/21
    net_price: Decimal  # BT-146
    item_name: str  # BT-153
    vat_category: str  # BT-151, UNCL 5305
    vat_rate: Decimal | None = None  # BT-152, None for category O
    base_quantity: Decimal | None = None  # BT-149
    gross_price: Decimal | None = None  # BT-148
    price_discount: Decimal | None = None  # BT-147 (gross − discount = net)
    description: str | None = None  # BT-154
    seller_item_id: str | None = None  # BT-155
    buyer_item_id: str | None = None  # BT-156
    standard_item_id: str | None = None  # BT-157
    standard_item_scheme: str | None = None  # scheme of BT-157, e.g. "0160" GTIN
    # BT-158: (code, list id) pairs, list id from UNTDID 7143 e.g. "STI", "SRV"
    classifications: list[tuple[str, str | None]] = field(default_factory=list)
    origin_country: str | None = None  # BT-159
    properties: list[tuple[str, str]] = field(default_factory=list)  # BT-160 / BT-161
    allowances_charges: list[AllowanceCharge] = field(default_factory=list)  # BG-27 / BG-28
    note: str | None = None  # BT-127
    period_start: date | None = None  # BT-134
    period_end: date | None = None  # BT-135
    order_line_reference: str | None = None  # BT-132
    accounting_cost: str | None = None  # BT-133
    object_id: str | None = None  # BT-128
    object_scheme: str | None = None  # scheme of BT-128
    net_amount: Decimal | None = None  # BT-131


@dataclass(slots=True, kw_only=True)
class VatExemption:
    """Why a VAT category is exempt (BT-120 text and/or BT-121 VATEX code).

    Categories E, AE, K, G and O need one; give it in
    :attr:`Document.vat_exemptions` keyed by category.
    """

    reason: str | None = None  # BT-120
    code: str | None = None  # BT-121, e.g. "VATEX-EU-AE"


@dataclass(slots=True, kw_only=True)
class VatBreakdown:
    """One VAT breakdown entry (BG-23) per VAT category and rate."""

    category: str  # BT-118
    rate: Decimal | None  # BT-119, None for category O
    taxable_amount: Decimal  # BT-116
    tax_amount: Decimal  # BT-117
    exemption_reason: str | None = None  # BT-120
    exemption_reason_code: str | None = None  # BT-121


@dataclass(slots=True, kw_only=True)
class Totals:
    """Document totals (BG-22), all in the document currency except ``tax_total_accounting``.

    ``allowance_total`` and ``charge_total`` are ``None`` when the document has
    no document-level allowance or charge; ``prepaid`` and ``rounding`` are
    inputs that :func:`einvoice.compute` keeps.
    """

    line_extension: Decimal  # BT-106
    tax_exclusive: Decimal  # BT-109
    tax_total: Decimal  # BT-110
    tax_inclusive: Decimal  # BT-112
    payable: Decimal  # BT-115
    allowance_total: Decimal | None = None  # BT-107
    charge_total: Decimal | None = None  # BT-108
    tax_total_accounting: Decimal | None = None  # BT-111, in Document.tax_currency
    prepaid: Decimal | None = None  # BT-113
    rounding: Decimal | None = None  # BT-114


@dataclass(slots=True, kw_only=True)
class Attachment:
    """An additional supporting document (BG-24) or invoiced object identifier (BT-18).

    Either ``content`` (embedded, with ``mime_code`` and ``filename``) or an
    external ``uri``; both may be absent for a plain reference.
    ``document_type_code`` "130" marks the invoiced object identifier (BT-18).
    """

    id: str  # BT-122 / BT-18
    id_scheme: str | None = None  # scheme of BT-18
    document_type_code: str | None = None
    description: str | None = None  # BT-123
    mime_code: str | None = None  # e.g. "application/pdf"
    filename: str | None = None  # BT-125-2
    content: bytes | None = None  # BT-125
    uri: str | None = None  # BT-124


@dataclass(slots=True, kw_only=True)
class Document:
    """An EN 16931 invoice or credit note, ready for :func:`einvoice.write_ubl`.

    ``type_code`` (BT-3) defaults to "380" for invoices and "381" for credit
    notes. ``vat_breakdown`` and ``totals`` may be left empty: :func:`einvoice.compute`
    fills them, and the writer computes them when missing.
    """

    kind: DocumentKind = DocumentKind.INVOICE
    number: str  # BT-1
    issue_date: date  # BT-2
    currency: str  # BT-5, ISO 4217
    seller: Party  # BG-4
    buyer: Party  # BG-7
    lines: list[Line] = field(default_factory=list)  # BG-25
    type_code: str = ""  # BT-3, UNTDID 1001
    tax_currency: str | None = None  # BT-6 VAT accounting currency
    due_date: date | None = None  # BT-9
    tax_point_date: date | None = None  # BT-7
    buyer_reference: str | None = None  # BT-10
    project_reference: str | None = None  # BT-11
    contract_reference: str | None = None  # BT-12
    order_reference: str | None = None  # BT-13
    sales_order_reference: str | None = None  # BT-14
    receiving_reference: str | None = None  # BT-15
    despatch_reference: str | None = None  # BT-16
    tender_reference: str | None = None  # BT-17
    preceding_invoices: list[tuple[str, date | None]] = field(default_factory=list)  # BG-3
    notes: list[str] = field(default_factory=list)  # BT-22
    accounting_cost: str | None = None  # BT-19
    period_start: date | None = None  # BT-73
    period_end: date | None = None  # BT-74
    payee: Party | None = None  # BG-10
    tax_representative: Party | None = None  # BG-11
    delivery: Delivery | None = None  # BG-13
    payment_means: list[PaymentMeans] = field(default_factory=list)  # BG-16
    payment_terms: str | None = None  # BT-20
    allowances_charges: list[AllowanceCharge] = field(default_factory=list)  # BG-20 / BG-21
    vat_exemptions: dict[str, VatExemption] = field(default_factory=dict)
    vat_breakdown: list[VatBreakdown] = field(default_factory=list)  # BG-23
    totals: Totals | None = None  # BG-22
    attachments: list[Attachment] = field(default_factory=list)  # BG-24, BT-18
    customization_id: str = PEPPOL_CUSTOMIZATION_ID  # BT-24
    profile_id: str = PEPPOL_PROFILE_ID  # BT-23

    @property
    def follows_peppol(self) -> bool:
        """True when the document declares Peppol BIS Billing 3.0, whose rules then apply."""
        return follows_peppol(self.customization_id)

    def __post_init__(self) -> None:
        self.kind = DocumentKind(self.kind)
        if not self.type_code:
            self.type_code = "381" if self.kind is DocumentKind.CREDIT_NOTE else "380"
