"""Demo invoices and credit notes, written in Herald's JSON import format.

They go through the same import code as a customer's files, so the demo's
documents meet the same EN 16931 rules and leave the same events.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from einvoice.creditor_reference import creditor_reference
from portal.demo.customers import DemoCustomer

EU_REVERSE_CHARGE = {"NL", "ES", "IE"}
REVERSE_CHARGE = {"vat_category": "AE", "vat_rate": "0",
                  "vat_exemption_reason": "Reverse charge",
                  "vat_exemption_reason_code": "VATEX-EU-AE"}
EXPORT = {"vat_category": "G", "vat_rate": "0",
          "vat_exemption_reason": "Export outside the EU",
          "vat_exemption_reason_code": "VATEX-EU-G"}


def month_starts(today: date, months: int) -> list[date]:
    """The first day of each of the last ``months`` months, oldest first, this month included."""
    starts, current = [], today.replace(day=1)
    for _ in range(months):
        starts.append(current)
        current = (current - timedelta(days=1)).replace(day=1)
    return starts[::-1]


def _vat(demo: DemoCustomer, standard_rate: str) -> dict[str, str]:
    customer = demo.customer
    if customer.country_code == "US":
        return dict(EXPORT)
    if customer.vat_id and customer.country_code in EU_REVERSE_CHARGE:
        return dict(REVERSE_CHARGE)
    return {"vat_category": "S", "vat_rate": standard_rate}


def account_lines(kind: str, demo: DemoCustomer, rng: random.Random) -> list[dict[str, Any]]:
    """The lines of one month's bill for one account."""
    if kind == "mobile":
        lines = [{"item_name": "Mobile subscription Unlimited 20 GB", "quantity": "1",
                  "unit_code": "C62", "net_price": "24.79", **_vat(demo, "21")}]
        minutes = rng.randint(0, 240)
        if minutes:
            lines.append({"item_name": "Calls outside your bundle", "quantity": str(minutes),
                          "unit_code": "MIN", "net_price": "0.0950", **_vat(demo, "21"),
                          "description": f"{minutes} minutes to other networks abroad"})
        if rng.random() < 0.2:
            lines.append({"item_name": "Device insurance", "quantity": "1", "unit_code": "C62",
                          "net_price": "6.50", "vat_category": "E", "vat_rate": "0",
                          "vat_exemption_reason": "Insurance services are exempt",
                          "vat_exemption_reason_code": "VATEX-EU-132"}
                         if demo.customer.country_code == "BE" else
                         {"item_name": "Device insurance", "quantity": "1", "unit_code": "C62",
                          "net_price": "6.50", **_vat(demo, "21")})
        return lines
    if kind == "broadband":
        lines = [{"item_name": "Fibre internet 500 Mbps", "quantity": "1", "unit_code": "C62",
                  "net_price": "41.32", **_vat(demo, "21")}]
        if rng.random() < 0.5:
            lines.append({"item_name": "TV option", "quantity": "1", "unit_code": "C62",
                          "net_price": "12.40", **_vat(demo, "21"),
                          "allowances_charges": [{"kind": "allowance", "amount": "2.00",
                                                  "reason": "Bundle discount",
                                                  "reason_code": "95"}]})
        if rng.random() < 0.1:
            lines.append({"item_name": "Printed programme guide", "quantity": "1",
                          "unit_code": "C62", "net_price": "3.50",
                          **({"vat_category": "Z", "vat_rate": "0"}
                             if demo.customer.country_code == "BE" else _vat(demo, "21"))})
        return lines
    kwh = rng.randint(120, 900)
    return [
        {"item_name": "Electricity", "quantity": str(kwh), "unit_code": "KWH",
         "net_price": "0.2890", **_vat(demo, "6"),
         "description": f"{kwh} kWh measured"},
        {"item_name": "Network costs", "quantity": "1", "unit_code": "MON", "net_price": "18.50",
         **_vat(demo, "6")},
        {"item_name": "Federal energy contribution", "quantity": str(kwh), "unit_code": "KWH",
         "net_price": "0.002040", **_vat(demo, "6")},
    ]


def monthly_invoices(demo_customers: list[DemoCustomer], today: date, months: int,
                     rng: random.Random, *, seller_iban_reference: str) -> list[dict[str, Any]]:
    """One invoice per customer per month, numbered in issue order, plus some credit notes."""
    documents: list[dict[str, Any]] = []
    for start in month_starts(today, months):
        issue = start + timedelta(days=2)
        if issue > today:
            continue
        period_end = start - timedelta(days=1)
        period_start = period_end.replace(day=1)
        for demo in demo_customers:
            lines = []
            for account, kind in demo.accounts:
                for line in account_lines(kind, demo, rng):
                    line["description"] = (f"{account.number} · " + line.get("description", "")
                                           ).rstrip(" ·")
                    lines.append(line)
            document: dict[str, Any] = {
                "number": "",
                "issue_date": issue.isoformat(),
                "due_date": (issue + timedelta(days=30 if demo.customer.vat_id else 21)
                             ).isoformat(),
                "currency": "USD" if demo.customer.country_code == "US" else "EUR",
                "customer": {"number": demo.customer.number},
                "account": demo.accounts[0][0].number,
                "buyer_reference": demo.customer.number,
                "period": {"start": period_start.isoformat(), "end": period_end.isoformat()},
                "payment_terms": "",
                "lines": lines,
            }
            if document["currency"] != "EUR":
                document["tax_currency"] = "EUR"
                document["tax_amount_in_tax_currency"] = "0.00"
            if demo.loyal:
                vat = _vat(demo, "21")
                document["allowances_charges"] = [{
                    "kind": "allowance", "amount": "5.00", "reason": "Loyalty discount",
                    "reason_code": "95", "vat_category": vat["vat_category"],
                    "vat_rate": vat["vat_rate"]}]
            documents.append(document)
    documents.sort(key=lambda d: (d["issue_date"], d["customer"]["number"]))
    for sequence, document in enumerate(documents, start=1):
        year = document["issue_date"][:4]
        document["number"] = f"INV-{year}-{sequence:06d}"
        reference = creditor_reference(f"{year}{sequence:06d}")
        document["payment_reference"] = reference
        document["payment_terms"] = (f"Pay by {document['due_date']} to {seller_iban_reference} "
                                     f"with reference {reference}.")
    return documents + credit_notes(documents, today, rng)


def credit_notes(invoices: list[dict[str, Any]], today: date,
                 rng: random.Random) -> list[dict[str, Any]]:
    """Credit notes for about one invoice in twenty: a service interruption refunded."""
    notes = []
    for invoice in invoices:
        if rng.random() >= 0.05:
            continue
        issue = date.fromisoformat(invoice["issue_date"]) + timedelta(days=rng.randint(3, 20))
        if issue > today:
            continue
        first = invoice["lines"][0]
        vat = {k: first[k] for k in ("vat_category", "vat_rate", "vat_exemption_reason",
                                     "vat_exemption_reason_code") if k in first}
        notes.append({
            "type": "credit_note",
            "number": "",
            "issue_date": issue.isoformat(),
            "currency": invoice["currency"],
            "customer": invoice["customer"],
            "account": invoice["account"],
            "buyer_reference": invoice["buyer_reference"],
            "preceding_invoice": {"number": invoice["number"], "issue_date": invoice["issue_date"]},
            "note": "Compensation for a service interruption.",
            "payment_terms": "We deduct this credit from your next invoice.",
            "lines": [{"item_name": "Compensation: service interruption", "quantity": "1",
                       "unit_code": "C62", "net_price": rng.choice(("5.00", "10.00", "15.00")),
                       **vat}],
            **({"tax_currency": "EUR", "tax_amount_in_tax_currency": "0.00"}
               if invoice["currency"] != "EUR" else {}),
        })
    for sequence, note in enumerate(sorted(notes, key=lambda n: n["issue_date"]), start=1):
        note["number"] = f"CN-{note['issue_date'][:4]}-{sequence:05d}"
    return notes
