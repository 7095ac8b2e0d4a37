"""The records the browser tests find in the live server's database, committed.

Three customers with one sign-in each (English, Dutch and Spanish), a few
issued invoices with their PDFs already rendered (so a download is a plain
read), and one invoice paid in full. Another customer's invoice is there so a
test can show it is never listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.documents import DatabaseStore
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import ImportRejected, Locator
from portal.imports.service import import_documents
from portal.models import Invoice, PaymentMethod
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

    alice: Person
    bob: Person
    carla: Person
    open_invoice: str  # Alice's, unpaid and due in the future
    paid_invoice: str  # Alice's, paid in full
    extra: dict[str, str] = field(default_factory=dict)


def seed(session: Session, public_url: str) -> Seeded:
    """Create the browser tests' records in ``session``; the caller commits."""
    org = make_organisation(session, trading_name="Testing Telecom", primary_colour="#0b5fff")
    today = date.today()
    people = {
        "alice": ("C1", "Alice Martin", "en", ("INV-2026-0001", "INV-2026-0002", "INV-2026-0003")),
        "bob": ("C2", "Bob Peeters", "nl", ("INV-2026-0101",)),
        "carla": ("C3", "Carla García", "es", ("INV-2026-0201",)),
    }
    mappings = []
    for _name, (number, full_name, language, invoices) in people.items():
        customer = make_customer(session, org, number, name=full_name, language=language)
        for i, invoice_number in enumerate(invoices):
            issued = today - timedelta(days=20 - i)
            mappings.append(invoice_json(invoice_number, customer.number,
                                         issue_date=issued.isoformat(),
                                         due_date=(issued + timedelta(days=30)).isoformat()))
    documents = [document_from_mapping(m, Locator("browser tests", str(i)), source="json")
                 for i, m in enumerate(mappings)]
    store = DatabaseStore()
    try:
        import_documents(session, documents, file="browser tests", store=store)
    except ImportRejected as rejected:  # say why, not just that
        raise AssertionError([str(p) for p in rejected.problems]) from rejected
    invoices = {i.number: i for i in session.scalars(sa.select(Invoice))}
    for invoice in invoices.values():
        render_invoice_pdf(session, invoice, store, public_url=public_url,
                           actor="browser-tests")
    people_out = {}
    for name, (number, _full_name, language, numbers) in people.items():
        customer = invoices[numbers[0]].customer
        email = f"{name}@example.com"
        make_user(session, email=email, password=PASSWORD, customer=customer)
        people_out[name] = Person(email=email, customer_number=number, language=language,
                                  invoices=numbers)
    paid = invoices["INV-2026-0002"]
    record_payment(session, paid, amount=Decimal(paid.payable_amount),
                   received_at=datetime.now(UTC), method=PaymentMethod.BANK_TRANSFER,
                   provider="bank", provider_reference="BROWSER-TEST-1", actor="browser-tests")
    session.flush()
    return Seeded(alice=people_out["alice"], bob=people_out["bob"], carla=people_out["carla"],
                  open_invoice="INV-2026-0001", paid_invoice="INV-2026-0002")
