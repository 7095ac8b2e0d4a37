"""Shared set-up for the review & pay tests: two customers with one issued invoice each."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import sqlalchemy as sa

from distribution.documents import DatabaseStore
from einvoice.creditor_reference import creditor_reference
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.models import Customer, Invoice, Organisation
from tests.factories import invoice_json, make_customer, make_organisation

REFERENCE = creditor_reference("2026000123")  # RF.. on Alice's invoice


@dataclass
class Billed:
    """What the tests pay: Alice's INV-1 (with an RF reference) and Bob's INV-2."""

    org: Organisation
    alice: Customer
    bob: Customer
    inv1: Invoice
    inv2: Invoice


def bill(session, *, due_date: str = "2026-10-31", alice_language: str = "en") -> Billed:
    """Import and issue one invoice for each of two customers."""
    org = make_organisation(session)
    alice = make_customer(session, org, "C1", name="Alice", language=alice_language)
    bob = make_customer(session, org, "C2", name="Bob")
    documents = [
        document_from_mapping(invoice_json("INV-1", "C1", due_date=due_date,
                                           payment_reference=REFERENCE),
                              Locator("t", "1"), source="json"),
        document_from_mapping(invoice_json("INV-2", "C2", due_date=due_date),
                              Locator("t", "2"), source="json"),
    ]
    import_documents(session, documents, file="t", store=DatabaseStore())
    invoices = {i.number: i for i in session.scalars(sa.select(Invoice).where(
        Invoice.organisation_id == org.id))}
    return Billed(org, alice, bob, invoices["INV-1"], invoices["INV-2"])


def csrf_from(html: bytes) -> str:
    """The CSRF token of the first form on a page."""
    match = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
        re.search(rb'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1).decode()


def configure(app, monkeypatch, **changes) -> None:
    """Change the app's settings for one test (monkeypatch puts them back)."""
    monkeypatch.setitem(app.config, "HERALD",
                        dataclasses.replace(app.config["HERALD"], **changes))
