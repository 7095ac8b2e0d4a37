"""Builders for test records; each takes a session and flushes, never commits."""

from __future__ import annotations

import secrets
from decimal import Decimal

from portal.auth.passwords import hash_password
from portal.models import Contact, Customer, CustomerKind, Organisation, Role, User


def make_organisation(session, **overrides) -> Organisation:
    """A Belgian seller."""
    fields = dict(
        legal_name="Testing Telecom NV", vat_id="BE0123456749",
        legal_registration_id="0123456749", address_line1="Rue de la Loi 1", city="Bruxelles",
        postal_code="1000", country_code="BE", iban="BE68539007547034", bic="GKCCBEBB",
        peppol_endpoint_scheme="0208", peppol_endpoint_id="0123456749", default_currency="EUR",
    )
    fields.update(overrides)
    org = Organisation(**fields)
    session.add(org)
    session.flush()
    return org


def make_customer(session, org: Organisation, number: str = "C1", **overrides) -> Customer:
    """A Belgian consumer with one email contact."""
    fields = dict(organisation_id=org.id, number=number, kind=CustomerKind.CONSUMER,
                  name=f"Customer {number}", language="en", time_zone="Europe/Brussels",
                  address_line1="Main Street 1", city="Gent", postal_code="9000",
                  country_code="BE")
    fields.update(overrides)
    customer = Customer(**fields)
    customer.contacts.append(Contact(email=f"{number.lower()}@example.com", is_primary=True))
    session.add(customer)
    session.flush()
    return customer


def make_user(session, *, email: str, password: str = "correct horse battery",
              customer: Customer | None = None, role: Role | None = None) -> User:
    """A sign-in for a customer (when ``customer`` is given) or a staff member."""
    user = User(email=email, name=email.split("@")[0],
                role=role or (Role.CUSTOMER if customer else Role.ADMIN),
                customer_id=customer.id if customer else None,
                password_hash=hash_password(password), session_token=secrets.token_hex(16))
    session.add(user)
    session.flush()
    return user


def invoice_json(number: str = "INV-1", customer: str = "C1", **overrides) -> dict:
    """One document in the JSON import format: two lines at 21 % and 6 %."""
    document = {
        "number": number,
        "issue_date": "2026-10-01",
        "due_date": "2026-10-31",
        "currency": "EUR",
        "customer": {"number": customer},
        "buyer_reference": "REF-1",
        "lines": [
            {"item_name": "Fibre internet", "quantity": "1", "unit_code": "C62",
             "net_price": "41.32", "vat_category": "S", "vat_rate": "21"},
            {"item_name": "Electricity", "quantity": "229", "unit_code": "KWH",
             "net_price": "0.2890", "vat_category": "S", "vat_rate": "6"},
        ],
    }
    document.update(overrides)
    return document


# The amounts invoice_json() adds up to, worked out by hand:
# 41.32 + 229 × 0.2890 (= 66.181 → 66.18) = 107.50 net;
# VAT 41.32 × 21 % = 8.6772 → 8.68 and 66.18 × 6 % = 3.9708 → 3.97; total 120.15.
INVOICE_JSON_PAYABLE = Decimal("120.15")
