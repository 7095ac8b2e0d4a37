"""Demo customers: consumers and businesses in Belgium, the Netherlands, Spain, Ireland,
the UK and the US, speaking English, Dutch or Spanish, each with one to three accounts."""

from __future__ import annotations

import random
from dataclasses import dataclass

from faker import Faker

from portal.models import Account, Contact, Customer, CustomerKind

# (Faker locale, country, language, time zones, VAT prefix, Peppol scheme, weight)
MARKETS = (
    ("nl_BE", "BE", "nl", ("Europe/Brussels",), "BE", "0208", 40),
    ("en_GB", "BE", "en", ("Europe/Brussels",), "BE", "0208", 8),
    ("nl_NL", "NL", "nl", ("Europe/Amsterdam",), "NL", "9944", 18),
    ("es_ES", "ES", "es", ("Europe/Madrid", "Atlantic/Canary"), "ES", "9920", 18),
    ("en_IE", "IE", "en", ("Europe/Dublin",), "IE", "9935", 6),
    ("en_GB", "GB", "en", ("Europe/London",), None, None, 5),
    ("en_US", "US", "en", ("America/New_York", "America/Chicago"), None, None, 5),
)

ACCOUNT_KINDS = ("mobile", "broadband", "energy")


@dataclass(slots=True)
class DemoCustomer:
    """A demo customer and what the invoice generator needs to know about it."""

    customer: Customer
    accounts: list[tuple[Account, str]]  # (account, kind)
    loyal: bool


def belgian_enterprise_number(rng: random.Random) -> str:
    """A 10-digit Belgian enterprise number with valid mod-97 check digits."""
    base = rng.randint(2_000_000, 9_999_999)
    return f"0{base:07d}{97 - base % 97:02d}"


def vat_id(country: str, rng: random.Random) -> str:
    """A well-formed VAT ID for ``country`` (check digits right where the rules check them)."""
    if country == "BE":
        return "BE" + belgian_enterprise_number(rng)
    if country == "NL":
        return f"NL{rng.randint(100_000_000, 999_999_999)}B01"
    if country == "ES":
        return f"ESB{rng.randint(10_000_000, 99_999_999)}"
    return f"IE{rng.randint(1_000_000, 9_999_999)}W"


def make_customers(organisation_id: int, count: int, rng: random.Random) -> list[DemoCustomer]:
    """``count`` customers, about a third of them businesses."""
    fakers: dict[str, Faker] = {}
    weights = [market[-1] for market in MARKETS]
    result = []
    account_seq = 0
    for index in range(count):
        locale, country, language, zones, vat_prefix, scheme, _ = rng.choices(MARKETS, weights)[0]
        fake = fakers.setdefault(locale, Faker(locale))
        fake.seed_instance(rng.randint(0, 2**31))
        business = (vat_prefix is not None and rng.random() < 0.35) or (
            country == "US" and rng.random() < 0.5)
        person = fake.name()
        customer = Customer(
            organisation_id=organisation_id,
            number=f"C{100001 + index}",
            kind=CustomerKind.BUSINESS if business else CustomerKind.CONSUMER,
            name=fake.company() if business else person,
            language=language,
            time_zone=rng.choice(zones),
            address_line1=fake.street_address().replace("\n", ", ")[:200],
            city=fake.city()[:100],
            postal_code=fake.postcode()[:20],
            country_code=country,
        )
        if business and vat_prefix:
            customer.vat_id = vat_id(country, rng)
            if country == "BE":
                customer.legal_registration_id = customer.vat_id[2:]
            if rng.random() < 0.6:  # most businesses in Peppol countries are reachable there
                customer.peppol_endpoint_scheme = scheme
                customer.peppol_endpoint_id = (customer.vat_id[2:] if scheme == "0208"
                                               else customer.vat_id)
        email_name = person.lower().replace(" ", ".").replace("'", "")
        email_name = "".join(ch for ch in email_name
                             if ch.isascii() and (ch.isalnum() or ch == "."))
        customer.contacts.append(Contact(
            name=person, email=f"{email_name}.{index}@example.com", phone=fake.phone_number()[:40],
            is_primary=True, role="billing" if business else None,
        ))
        kinds = rng.sample(ACCOUNT_KINDS, k=rng.choice((1, 1, 1, 2, 2, 3)))
        accounts = []
        for kind in kinds:
            account_seq += 1
            accounts.append((Account(organisation_id=organisation_id,
                                     number=f"{kind[0].upper()}{500000 + account_seq}",
                                     description=_account_description(kind, fake)), kind))
        customer.accounts.extend(account for account, _ in accounts)
        result.append(DemoCustomer(customer, accounts, loyal=rng.random() < 0.15))
    return result


def _account_description(kind: str, fake: Faker) -> str:
    if kind == "mobile":
        return f"Mobile line {fake.msisdn()[-9:]}"
    if kind == "broadband":
        return "Fibre internet and TV"
    return f"Electricity, meter {fake.bothify('##-####-##')}"
