"""Turn a :class:`~einvoice.model.Document` into the plain values the template prints.

Everything localised happens here (labels, dates, numbers, money, units), so
the template only places strings. Amounts are read from the document as
computed; nothing is recalculated except a line's amount before its own
allowances and charges, which is derived from its net amount so the amount
column always adds up to the lines total.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent

from einvoice.creditor_reference import format_creditor_reference, is_valid_creditor_reference
from einvoice.model import AllowanceCharge, Document, DocumentKind, Line, Party, PaymentMeans
from einvoice.pdf.labels import LABELS, STATUSES, SUPPORTED_LANGUAGES, VAT_CATEGORIES, unit_name
from einvoice.pdf.stack import line_blocks, stack, total_blocks, vat_columns

__all__ = ["Formatter", "build_context", "resolve_language"]

# A bare language gets a Eurozone locale: Herald bills in euros first, and
# "en" alone would print US dates.
_DEFAULT_LOCALES = {"en": "en_IE", "nl": "nl_NL", "es": "es_ES"}
_CREDIT_TRANSFER_CODES = frozenset({"30", "58"})
_ONE = Decimal(1)
# Characters that surely fit on one line of a stacked cell (see einvoice.pdf.stack):
# document facts and payment values.
_META_FITS, _PAYMENT_FITS = 26, 44


@functools.lru_cache(maxsize=32)
def resolve_language(language: str) -> tuple[str, Locale]:
    """``"nl"`` → (``"nl"``, nl_NL); ``"nl-BE"`` → (``"nl"``, nl_BE). Raises ValueError."""
    tag = language.strip().replace("-", "_")
    base = tag.split("_")[0].lower()
    if base not in SUPPORTED_LANGUAGES:
        raise ValueError(
            f"language {language!r} is not supported; use one of {sorted(SUPPORTED_LANGUAGES)}"
        )
    return base, Locale.parse(tag if "_" in tag else _DEFAULT_LOCALES[base])


@dataclass(frozen=True, slots=True)
class Formatter:
    """Babel formatting for one locale and one document currency."""

    locale: Locale
    currency: str

    def money(self, amount: Decimal, currency: str | None = None) -> str:
        """An amount with currency, to the currency's decimals."""
        return format_currency(amount, currency or self.currency, locale=self.locale)

    def price(self, amount: Decimal) -> str:
        """A unit price: at least the currency's decimals, more when the price has them."""
        return format_currency(
            amount, self.currency, locale=self.locale, decimal_quantization=False
        )

    def number(self, value: Decimal) -> str:
        """A quantity, with as many decimals as it has and no trailing zeros."""
        return format_decimal(value.normalize(), locale=self.locale, decimal_quantization=False)

    def percent(self, rate: Decimal | None) -> str:
        """A VAT rate given in percent (21 → "21%"); a dash when there is none."""
        if rate is None:
            return "–"
        return format_percent(rate / 100, locale=self.locale, decimal_quantization=False)

    def date(self, value: date | None) -> str:
        """A date written out ("1 March 2024"), or an empty string."""
        return format_date(value, format="long", locale=self.locale) if value else ""


@dataclass(slots=True, kw_only=True)
class PartyView:
    """A seller or buyer as lines of text."""

    name: str
    trading_name: str | None
    address: list[str]
    vat_id: str | None
    registration: str | None
    contact: list[str] = field(default_factory=list)


def _party(party: Party, locale: Locale) -> PartyView:
    address: list[str] = []
    if party.address is not None:
        addr = party.address
        address.extend(line for line in addr.lines if line)
        city = " ".join(part for part in (addr.postal_zone, addr.city) if part)
        if city:
            address.append(city)
        if addr.country_subdivision:
            address.append(addr.country_subdivision)
        if addr.country_code:
            address.append(locale.territories.get(addr.country_code, addr.country_code))
    contact = [
        value for value in (party.contact_name, party.contact_email, party.contact_phone) if value
    ]
    return PartyView(
        name=party.name,
        trading_name=party.trading_name
        if party.trading_name and party.trading_name != party.name
        else None,
        address=address,
        vat_id=party.vat_id,
        registration=party.legal_registration_id,
        contact=contact,
    )


def _period(start: date | None, end: date | None, fmt: Formatter) -> str | None:
    if not start and not end:
        return None
    return f"{fmt.date(start)} – {fmt.date(end)}".strip(" –")


def _adjustment_label(ac: AllowanceCharge, words: dict[str, str], fmt: Formatter) -> str:
    label = ac.reason or words["charge" if ac.is_charge else "allowance"]
    if ac.percentage is not None:
        label = f"{label} ({fmt.percent(ac.percentage)})"
    return label


def _signed(ac: AllowanceCharge, fmt: Formatter) -> str:
    amount = ac.amount or Decimal(0)
    return fmt.money(amount if ac.is_charge else -amount)


def _line(line: Line, words: dict[str, str], language: str, fmt: Formatter) -> dict:
    net = line.net_amount if line.net_amount is not None else Decimal(0)
    adjustments = line.allowances_charges
    # Shown before its own allowances and charges, with those as rows below,
    # so the amount column adds up; amounts are in cents, so this is exact.
    before = net + sum(
        ((ac.amount or 0) * (-1 if ac.is_charge else 1) for ac in adjustments), Decimal(0)
    )
    price = fmt.price(line.net_price)
    if line.base_quantity not in (None, _ONE):
        base = line.base_quantity
        price += f" / {fmt.number(base)} {unit_name(line.unit_code, language, base != _ONE)}"
    details = [text for text in (line.description, line.note) if text]
    period = _period(line.period_start, line.period_end, fmt)
    if period:
        details.append(f"{words['period']}: {period}")
    return {
        "name": line.item_name,
        "details": details,
        "quantity": f"{fmt.number(line.quantity)} "
        f"{unit_name(line.unit_code, language, line.quantity != _ONE)}",
        "price": price,
        "vat": fmt.percent(line.vat_rate) if line.vat_category != "O" else "–",
        "amount": fmt.money(before),
        "adjustments": [
            {"label": _adjustment_label(ac, words, fmt), "amount": _signed(ac, fmt)}
            for ac in adjustments
        ],
    }


def _meta(doc: Document, words: dict[str, str], fmt: Formatter) -> list[tuple[str, str]]:
    rows = [(words["number"], doc.number), (words["issue_date"], fmt.date(doc.issue_date))]
    if doc.due_date and doc.kind is DocumentKind.INVOICE:
        rows.append((words["due_date"], fmt.date(doc.due_date)))
    if doc.delivery is not None and doc.delivery.date:
        rows.append((words["delivery_date"], fmt.date(doc.delivery.date)))
    period = _period(doc.period_start, doc.period_end, fmt)
    if period:
        rows.append((words["period"], period))
    for key in ("buyer_reference", "order_reference", "contract_reference", "project_reference"):
        value = getattr(doc, key)
        if value:
            rows.append((words[key], value))
    for number, issued in doc.preceding_invoices:
        text = f"{number} ({fmt.date(issued)})" if issued else number
        rows.append((words["preceding_invoice"], text))
    return rows


def _totals(doc: Document, words: dict[str, str], fmt: Formatter) -> list[dict]:
    totals = doc.totals
    assert totals is not None  # render_pdf computes missing totals first
    rows: list[dict] = []
    if doc.allowances_charges:
        rows.append({"label": words["line_total"], "amount": fmt.money(totals.line_extension)})
        for ac in doc.allowances_charges:
            label = _adjustment_label(ac, words, fmt)
            if ac.vat_category:
                label = f"{label}, {words['vat']} {fmt.percent(ac.vat_rate)}"
            rows.append({"label": label, "amount": _signed(ac, fmt)})
    rows.append(
        {"label": words["net_total"], "amount": fmt.money(totals.tax_exclusive), "rule": True}
    )
    rows.append({"label": words["vat_total"], "amount": fmt.money(totals.tax_total)})
    if totals.tax_total_accounting is not None and doc.tax_currency:
        rows.append(
            {
                "label": words["vat_accounting"].format(currency=doc.tax_currency),
                "amount": fmt.money(totals.tax_total_accounting, doc.tax_currency),
            }
        )
    rows.append(
        {
            "label": words["total"],
            "amount": fmt.money(totals.tax_inclusive),
            "rule": True,
            "strong": True,
        }
    )
    if totals.prepaid:
        rows.append({"label": words["prepaid"], "amount": fmt.money(-totals.prepaid)})
    if totals.rounding:
        rows.append({"label": words["rounding"], "amount": fmt.money(totals.rounding)})
    return rows


def _vat_rows(doc: Document, language: str, fmt: Formatter) -> list[dict]:
    names = VAT_CATEGORIES[language]
    rows = []
    for entry in doc.vat_breakdown:
        reason = entry.exemption_reason or ""
        if entry.exemption_reason_code:
            reason = (
                f"{reason} ({entry.exemption_reason_code})"
                if reason
                else entry.exemption_reason_code
            )
        rows.append(
            {
                "category": names.get(entry.category, entry.category),
                "reason": reason,
                "rate": fmt.percent(entry.rate),
                "taxable": fmt.money(entry.taxable_amount),
                "vat": fmt.money(entry.tax_amount),
            }
        )
    return rows


def _group(text: str, size: int = 4) -> str:
    compact = re.sub(r"\s", "", text)
    return " ".join(compact[i : i + size] for i in range(0, len(compact), size))


def payment_means(doc: Document) -> PaymentMeans | None:
    """The payment means the PDF shows: the first one, as EN 16931 orders them."""
    return doc.payment_means[0] if doc.payment_means else None


def beneficiary(doc: Document, means: PaymentMeans) -> str:
    """Who receives a transfer: the account name, else the payee, else the seller."""
    if means.account_name:
        return means.account_name
    return doc.payee.name if doc.payee is not None else doc.seller.name


def _payment(doc: Document, words: dict[str, str], fmt: Formatter) -> dict | None:
    means = payment_means(doc)
    totals = doc.totals
    assert totals is not None
    if doc.kind is DocumentKind.CREDIT_NOTE:
        return {"intro": words["credit_info"], "rows": []}
    if means is None:
        return None
    due = fmt.money(totals.payable)
    intro = (
        words["pay_by_transfer"].format(amount=due, date=fmt.date(doc.due_date))
        if doc.due_date
        else words["pay_by_transfer_no_date"].format(amount=due)
    )
    # Values print in a monospaced font so that an IBAN or a reference is easy
    # to copy by eye (and all values of the stacked cell share one line height).
    rows: list[tuple[str, str]] = []
    if means.iban and means.code in _CREDIT_TRANSFER_CODES:
        rows.append((words["beneficiary"], beneficiary(doc, means)))
        rows.append(("IBAN", _group(means.iban)))
        if means.bic:
            rows.append(("BIC", means.bic))
    elif means.text:
        intro = means.text
    if means.payment_id:
        reference = means.payment_id
        if is_valid_creditor_reference(reference):
            reference = format_creditor_reference(reference.upper())
        rows.append((words["payment_reference"], reference))
    return {"intro": intro, "rows": stack(rows, _PAYMENT_FITS)}


def _status(status: str | None, language: str) -> dict | None:
    if not status:
        return None
    key = status.strip().lower().replace(" ", "_").replace("-", "_")
    return {"text": STATUSES[language].get(key, status), "key": key}


def _css_string(text: str) -> str:
    """Quote text as a CSS string (for the page counter in a margin box)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def page_counter_css(words: dict[str, str]) -> str:
    """``Page {page} of {pages}`` as a CSS ``content`` value with counters."""
    parts: Iterable[str] = re.split(r"(\{page\}|\{pages\})", words["page"])
    out = []
    for part in parts:
        if part == "{page}":
            out.append("counter(page)")
        elif part == "{pages}":
            out.append("counter(pages)")
        elif part:
            out.append(_css_string(part))
    return " ".join(out)


def build_context(
    doc: Document, language: str, *, status: str | None, review_url: str | None
) -> dict:
    """The template's values for a computed document (``doc.totals`` set)."""
    lang, locale = resolve_language(language)
    words = LABELS[lang]
    fmt = Formatter(locale, doc.currency)
    totals = doc.totals
    assert totals is not None
    is_credit = doc.kind is DocumentKind.CREDIT_NOTE
    vat_rows = _vat_rows(doc, lang, fmt)
    return {
        "lang": lang,
        "locale": str(locale).replace("_", "-"),
        "words": words,
        "title": words["credit_note" if is_credit else "invoice"],
        "is_credit": is_credit,
        "number": doc.number,
        "seller": _party(doc.seller, locale),
        "buyer": _party(doc.buyer, locale),
        "meta": stack(_meta(doc, words, fmt), _META_FITS),
        "lines": line_blocks([_line(line, words, lang, fmt) for line in doc.lines]),
        "totals": total_blocks(_totals(doc, words, fmt)),
        "amount_due_label": words["amount_credited" if is_credit else "amount_due"],
        "amount_due": fmt.money(totals.payable),
        "vat_rows": vat_rows,
        "vat_columns": vat_columns(vat_rows),
        "payment": _payment(doc, words, fmt),
        "status": _status(status, lang),
        "review_url": review_url,
        "review_label": words["view_online" if is_credit else "review_and_pay"],
        "notes": list(doc.notes),
        "payment_terms": doc.payment_terms,
        "page_counter": page_counter_css(words),
    }
