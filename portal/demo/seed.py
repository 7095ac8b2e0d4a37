"""Seeds the demo: a seller, about 200 customers, about 1,000 documents, payments, sign-ins.

Runs once per database (it looks for the demo seller first). The sign-in
passwords are random per install and kept in the instance folder, so a demo
left running is not open to a well-known password.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.channels.base import ChannelName
from distribution.documents import DocumentStore
from distribution.events import record_event
from distribution.preferences import ensure_message_types, set_preference
from distribution.recipients import Address, add_address
from distribution.runs import RunSummary, WaveOptions, start_wave
from portal.auth.passwords import hash_password
from portal.demo.customers import DemoCustomer, make_customers
from portal.demo.invoices import monthly_invoices
from portal.demo.push_sinks import DemoPushState, repoint_subscriptions
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.models import (
    DocumentKind,
    Invoice,
    InvoiceStatus,
    Organisation,
    PaymentMethod,
    Role,
    User,
)
from portal.payments import record_payment
from portal.recipients_sync import sync_customer
from portal.runs import RunSelection, create_document_run

DEMO_VAT_ID = "BE0123456749"
SIGN_INS_FILE = "demo-sign-ins.txt"
ACTOR = "demo"


@dataclass(frozen=True, slots=True)
class SignIn:
    """One demo sign-in to print."""

    role: str
    email: str
    password: str


def demo_organisation() -> Organisation:
    """Helder Telecom & Energy, the demo seller (Belgian, on Peppol)."""
    return Organisation(
        legal_name="Helder Telecom & Energy NV", trading_name="Helder",
        vat_id=DEMO_VAT_ID, legal_registration_id="0123456749",
        address_line1="Kunstlaan 21", city="Brussel", postal_code="1000", country_code="BE",
        email="billing@helder.example", phone="+32 2 555 01 00", website="https://helder.example",
        iban="BE68539007547034", bic="GKCCBEBB",
        peppol_endpoint_scheme="0208", peppol_endpoint_id="0123456749",
        default_currency="EUR", primary_colour="#0b5fff", accent_colour="#0f172a",
    )


def is_seeded(session: Session) -> bool:
    """True when the demo seller exists already."""
    return session.scalar(sa.select(Organisation.id).where(Organisation.vat_id == DEMO_VAT_ID)
                          ) is not None


def seed_demo(session: Session, instance_path: Path, store: DocumentStore, *,
              today: date | None = None, customers: int = 200, months: int = 5,
              seed: int = 2026) -> list[SignIn]:
    """Create the demo data in ``session`` (the caller commits) and return the sign-ins."""
    today = today or date.today()
    rng = random.Random(seed)
    org = demo_organisation()
    session.add(org)
    session.flush()
    record_event(session, "organisation", str(org.id), "organisation.created",
                 {"legal_name": org.legal_name}, actor=ACTOR)
    demo_customers = make_customers(org.id, customers, rng)
    session.add_all(demo.customer for demo in demo_customers)
    session.flush()
    mappings = monthly_invoices(demo_customers, today, months, rng,
                                seller_iban_reference="BE68 5390 0754 7034")
    documents = [document_from_mapping(m, Locator("demo", f"document {i + 1}"), source="demo")
                 for i, m in enumerate(mappings)]
    for doc in documents:
        doc.payment_means_code = "58" if doc.kind is not DocumentKind.CREDIT_NOTE else None
    import_documents(session, documents, file="demo", actor=ACTOR, store=store)
    _settle(session, org, today, rng)
    _preferences(session, demo_customers, rng, DemoPushState(instance_path))
    sign_ins = _sign_ins(session, demo_customers)
    _write_sign_ins(instance_path, sign_ins)
    return sign_ins


def _settle(session: Session, org: Organisation, today: date, rng: random.Random) -> None:
    """Pay most invoices that are due, some partly, leave some overdue, dispute a few."""
    invoices = session.scalars(sa.select(Invoice).where(
        Invoice.organisation_id == org.id, Invoice.kind == DocumentKind.INVOICE)
        .order_by(Invoice.id)).all()
    for invoice in invoices:
        overdue = invoice.due_date is not None and invoice.due_date < today
        roll = rng.random()
        if roll < 0.01:
            invoice.status = InvoiceStatus.DISPUTED
            record_event(session, "invoice", f"{org.id}:{invoice.number}", "invoice.disputed",
                         {"reason": "Customer does not recognise the roaming charges"},
                         actor=ACTOR)
            continue
        paid_share = (Decimal(1) if roll < 0.86 else Decimal("0.5") if roll < 0.9 else None) \
            if overdue else (Decimal(1) if roll < 0.3 else None)
        if paid_share is None or invoice.payable_amount <= 0:
            continue
        amount = (invoice.payable_amount * paid_share).quantize(Decimal("0.01"))
        paid_on = min(invoice.due_date - timedelta(days=rng.randint(0, 12)), today) \
            if invoice.due_date else invoice.issue_date
        paid_on = max(paid_on, invoice.issue_date)
        record_payment(
            session, invoice, amount=amount,
            received_at=datetime.combine(paid_on, time(10, rng.randint(0, 59)), tzinfo=UTC),
            method=PaymentMethod.BANK_TRANSFER, provider="bank",
            provider_reference=f"DEMO-{invoice.number}", reference=invoice.payment_reference,
            actor=ACTOR,
        )


def _preferences(session: Session, demo_customers: list[DemoCustomer],
                 rng: random.Random, push: DemoPushState) -> None:
    """Businesses on Peppol take e-invoices; some customers want the portal only or no PDF;
    about one in five switched on browser notifications, about one in seven uses the app."""
    ensure_message_types(session)
    push_rng = random.Random(rng.getrandbits(32))
    for demo in demo_customers:
        customer = demo.customer
        recipient = sync_customer(session, customer, actor=ACTOR)
        roll = push_rng.random()
        if roll < 0.2:
            add_address(session, recipient, ChannelName.WEB_PUSH,
                        json.dumps(push.new_subscription()), verified=True,
                        label="Demo browser", actor=ACTOR)
        elif roll < 0.35:
            add_address(session, recipient, ChannelName.FCM, push.new_device_token(),
                        verified=True, label="Demo phone", actor=ACTOR)
        if customer.peppol_endpoint_id:
            channels = [ChannelName.PEPPOL, ChannelName.EMAIL]
            if roll < 0.2:
                channels.append(ChannelName.WEB_PUSH)
            set_preference(session, recipient, "*", channels, email_attachments=[])
        elif roll < 0.2:
            set_preference(session, recipient, "*", [ChannelName.WEB_PUSH, ChannelName.EMAIL])
        elif roll < 0.35:
            set_preference(session, recipient, "*", [ChannelName.FCM, ChannelName.PORTAL])
        elif rng.random() < 0.1:
            set_preference(session, recipient, "*", [ChannelName.PORTAL])
        elif rng.random() < 0.2:
            set_preference(session, recipient, "invoice", [ChannelName.EMAIL, ChannelName.PORTAL],
                           email_attachments=["pdf", "ubl"])


def repoint_demo_subscriptions(session: Session, push: DemoPushState) -> int:
    """Point the demo's web push addresses at the sink's current port; returns how many moved.

    The sink keeps its port across restarts, and moves only when another
    program took it; then the subscriptions seeded earlier must follow it.
    """
    addresses = session.scalars(sa.select(Address).where(
        Address.channel == ChannelName.WEB_PUSH)).all()
    changed = repoint_subscriptions(push, [(a.id, a.value) for a in addresses])
    for address in addresses:
        if address.id in changed:
            address.value = changed[address.id]
            address.value_sha256 = hashlib.sha256(address.value.encode()).hexdigest()
    return len(changed)


def demo_run(session: Session, today: date, public_url: str) -> RunSummary:
    """A run over last month's invoices, started at a rate the demo can show going out."""
    first_of_month = today.replace(day=1)
    selection = RunSelection(kind=DocumentKind.INVOICE,
                             issued_from=(first_of_month - timedelta(days=1)).replace(day=1),
                             issued_to=first_of_month - timedelta(days=1))
    options = WaveOptions(wave_size=100, rate_per_minute=120, window_start_hour=0,
                          window_end_hour=24, weekdays=tuple(range(7)))
    summary = create_document_run(session, selection, options, name="Demo: last month's invoices",
                                  public_url=public_url, created_by=ACTOR)
    if summary.run.waves:
        start_wave(session, summary.run.waves[0].id, actor=ACTOR)
    return summary


def _sign_ins(session: Session, demo_customers: list[DemoCustomer]) -> list[SignIn]:
    sign_ins = []
    for role, email, name in ((Role.ADMIN, "admin@helder.example", "Demo administrator"),
                              (Role.BILLING_OPERATOR, "billing@helder.example", "Demo operator"),
                              (Role.SUPPORT_AGENT, "support@helder.example", "Demo support")):
        password = secrets.token_urlsafe(12)
        session.add(User(email=email, name=name, role=role, password_hash=hash_password(password),
                         session_token=secrets.token_hex(16)))
        sign_ins.append(SignIn(role.value.replace("_", " "), email, password))
    for language in ("en", "nl", "es"):
        # A small demo (--customers 5) may have nobody speaking one of the languages.
        demo = next((d for d in demo_customers if d.customer.language == language
                     and d.customer.primary_email), None)
        if demo is None:
            continue
        password = secrets.token_urlsafe(12)
        session.add(User(email=demo.customer.primary_email, name=demo.customer.name,
                         role=Role.CUSTOMER, customer_id=demo.customer.id,
                         password_hash=hash_password(password),
                         session_token=secrets.token_hex(16)))
        sign_ins.append(SignIn(f"customer ({language})", demo.customer.primary_email, password))
    session.flush()
    return sign_ins


def _write_sign_ins(instance_path: Path, sign_ins: list[SignIn]) -> None:
    path = instance_path / SIGN_INS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        for sign_in in sign_ins:
            handle.write(f"{sign_in.role}\t{sign_in.email}\t{sign_in.password}\n")


def read_sign_ins(instance_path: Path) -> list[SignIn]:
    """The sign-ins written when the demo was seeded (empty if the file is gone)."""
    path = instance_path / SIGN_INS_FILE
    if not path.exists():
        return []
    return [SignIn(*line.split("\t")) for line in path.read_text().splitlines() if line]
