"""The records the browser tests find in the live server's database, committed.

Three customers with one sign-in each (English, Dutch and Spanish), a few
issued invoices with their PDFs already rendered (so a download is a plain
read), and one invoice paid in full. Another customer's invoice is there so a
test can show it is never listed. Customer numbers double as the sign-in's
local part: customer ``alice`` signs in as ``alice@example.com``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.documents import DatabaseStore
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import ImportRejected, Locator
from portal.imports.service import import_documents
from portal.models import Invoice, Organisation, PaymentMethod
from portal.payments import record_payment
from portal.rendering import render_invoice_pdf
from tests.factories import invoice_json, make_customer, make_organisation, make_user

PASSWORD = "correct horse battery"  # a test sign-in on a throwaway database


@dataclass(frozen=True, slots=True)
class Person:
    """A customer's sign-in and the invoice numbers that customer owns."""

    email: str
    customer_number: str
    language: str
    invoices: tuple[str, ...]
    password: str = PASSWORD


@dataclass(frozen=True, slots=True)
class Seeded:
    """What :func:`seed` created, for tests to look things up by name."""

    organisation_id: int
    alice: Person
    bob: Person
    carla: Person
    open_invoice: str  # Alice's, unpaid and due in the future
    paid_invoice: str  # Alice's, paid in full


def add_customer(session: Session, org: Organisation, number: str, *, name: str,
                 language: str = "en", invoices: tuple[str, ...] = (),
                 public_url: str, render: bool = True, sign_in: bool = True) -> Person:
    """A customer with issued invoices (PDFs rendered when ``render``) and, when ``sign_in``,
    a sign-in."""
    customer = make_customer(session, org, number, name=name, language=language)
    today = date.today()
    mappings = []
    for i, invoice_number in enumerate(invoices):
        issued = today - timedelta(days=20 - i)
        mappings.append(invoice_json(invoice_number, number, issue_date=issued.isoformat(),
                                     due_date=(issued + timedelta(days=30)).isoformat()))
    documents = [document_from_mapping(m, Locator("browser tests", str(i)), source="json")
                 for i, m in enumerate(mappings)]
    store = DatabaseStore()
    if documents:
        try:
            import_documents(session, documents, file="browser tests", store=store)
        except ImportRejected as rejected:  # say why, not just that
            raise AssertionError([str(p) for p in rejected.problems]) from rejected
    if render:
        for invoice in session.scalars(sa.select(Invoice).where(
                Invoice.customer_id == customer.id)):
            render_invoice_pdf(session, invoice, store, public_url=public_url,
                               actor="browser-tests")
    email = f"{number.lower()}@example.com"
    if sign_in:
        make_user(session, email=email, password=PASSWORD, customer=customer)
    return Person(email=email, customer_number=number, language=language, invoices=invoices)


def seed(session: Session, public_url: str) -> Seeded:
    """Create the browser tests' shared records in ``session``; the caller commits.

    Tests that change what they touch (dispute, pay, sign, save preferences) make
    customers of their own with :meth:`LiveServer.new_customer` instead, so the
    desktop and phone runs of a test never see each other's changes.
    """
    org = make_organisation(session, trading_name="Testing Telecom", primary_colour="#0b5fff")
    alice = add_customer(session, org, "alice", name="Alice Martin", language="en",
                         invoices=("INV-2026-0001", "INV-2026-0002", "INV-2026-0003"),
                         public_url=public_url)
    bob = add_customer(session, org, "bob", name="Bob Peeters", language="nl",
                       invoices=("INV-2026-0101",), public_url=public_url)
    carla = add_customer(session, org, "carla", name="Carla García", language="es",
                         invoices=("INV-2026-0201",), public_url=public_url)
    paid = session.scalars(sa.select(Invoice).where(Invoice.number == "INV-2026-0002")).one()
    record_payment(session, paid, amount=Decimal(paid.payable_amount),
                   received_at=datetime.now(UTC), method=PaymentMethod.BANK_TRANSFER,
                   provider="bank", provider_reference="BROWSER-TEST-1", actor="browser-tests")
    session.flush()
    return Seeded(organisation_id=org.id, alice=alice, bob=bob, carla=carla,
                  open_invoice="INV-2026-0001", paid_invoice="INV-2026-0002")
