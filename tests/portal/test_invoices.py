"""The invoice list and invoice page: filters, sorting, paging, balances, timeline, downloads."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from distribution.deliveries import Delivery, DeliveryState, Message, transition
from distribution.documents import DatabaseStore
from distribution.runs import MessageSpec, WaveOptions, create_run
from portal.db import get_database
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.issuing import invoice_key
from portal.models import Invoice, PaymentKind, PaymentMethod
from portal.payments import record_payment
from portal.recipients_sync import recipient_key, sync_customer
from portal.runs import message_spec
from tests.factories import invoice_json, make_customer, make_organisation, make_user

PASSWORD = "correct horse battery"


def import_rows(session, rows, *, store=None) -> None:
    """Import JSON-format rows (see tests.factories.invoice_json)."""
    documents = [document_from_mapping(row, Locator("t", str(n)), source="json")
                 for n, row in enumerate(rows)]
    import_documents(session, documents, file="t", store=store)


def invoice(session, number: str) -> Invoice:
    return session.scalars(sa.select(Invoice).where(Invoice.number == number)).one()


def send(session, document: Invoice, *, message_type: str | None = None,
         subject_key: str | None = None, deliver: bool = True) -> list[Delivery]:
    """Plan the message about ``document`` in a run; when ``deliver``, its deliveries are sent."""
    sync_customer(session, document.customer, actor="test")
    spec = message_spec(document, "https://portal.example")
    if subject_key:
        spec = MessageSpec(recipient_key=spec.recipient_key, subject_key=subject_key,
                           parameters=spec.parameters, link=spec.link)
    create_run(session, name="t", message_type=message_type or document.kind.value,
               specs=[spec], selection={}, created_by="test", options=WaveOptions())
    deliveries = list(session.scalars(
        sa.select(Delivery).join(Message, Message.id == Delivery.message_id)
        .where(Message.subject_key == spec.subject_key).order_by(Delivery.id)))
    if deliver:
        for delivery in deliveries:
            assert transition(session, delivery.id, DeliveryState.PENDING, DeliveryState.SENT,
                              event="delivery.sent", actor="test",
                              payload={"provider_message_id": "<x@smtp.example>"},
                              sent_at=datetime.now(UTC))
        session.expire_all()
    return deliveries


def sign_in(client, email, password=PASSWORD):
    page = client.get("/sign-in")
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1)
    response = client.post("/sign-in", data={"csrf_token": token.decode(), "email": email,
                                             "password": password})
    assert response.status_code == 302, response.data
    return response


def csrf_token(client, path="/invoices") -> str:
    page = client.get(path)
    return re.search(rb'"X-CSRFToken": "([^"]+)"', page.data).group(1).decode()


@pytest.fixture
def billing(session):
    """Alice: three invoices (one partly paid, one credited), a credit note; Bob: one invoice."""
    org = make_organisation(session)
    alice = make_customer(session, org, "C1", name="Alice", time_zone="Europe/Brussels")
    bob = make_customer(session, org, "C2", name="Bob")
    import_rows(session, [
        invoice_json("INV-A1", "C1", issue_date="2026-09-01", due_date="2026-09-30",
                     buyer_reference="PO-777"),
        invoice_json("INV-A2", "C1", issue_date="2026-10-01", due_date="2026-10-31"),
        invoice_json("INV-A3", "C1", issue_date="2026-11-01", due_date="2099-12-01",
                     lines=[{"item_name": "Router", "quantity": "1", "unit_code": "C62",
                             "net_price": "500.00", "vat_category": "S", "vat_rate": "21"}]),
        invoice_json("CN-A1", "C1", type="credit_note", issue_date="2026-10-05",
                     due_date=None, payment_terms="Deducted",
                     preceding_invoice={"number": "INV-A2", "issue_date": "2026-10-01"},
                     lines=[{"item_name": "Goodwill", "quantity": "1", "unit_code": "C62",
                             "net_price": "10.00", "vat_category": "S", "vat_rate": "21"}]),
        invoice_json("INV-B1", "C2", buyer_reference="PO-777"),
    ], store=DatabaseStore())
    record_payment(session, invoice(session, "INV-A1"), amount=Decimal("20.15"),
                   received_at=datetime(2026, 9, 20, 9, 0, tzinfo=UTC),
                   method=PaymentMethod.BANK_TRANSFER, provider="bank",
                   provider_reference="A1-1", actor="test")
    make_user(session, email="alice@example.com", customer=alice)
    make_user(session, email="bob@example.com", customer=bob)
    return alice, bob


@contextmanager
def counting_statements(app):
    """Count the SQL statements the app runs inside the block."""
    statements: list[str] = []
    engine = get_database(app).engine

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def numbers(html: bytes) -> list[str]:
    """Document numbers in the list, in the order shown."""
    return re.findall(r'href="/invoices/((?:INV|CN)-[^"/]+)"', html.decode())


def test_list_shows_status_amounts_due_dates_and_open_balances(client, billing):
    sign_in(client, "alice@example.com")
    page = client.get("/invoices").data.decode()
    assert numbers(page.encode()) == ["INV-A3", "CN-A1", "INV-A2", "INV-A1"]  # newest first
    assert "INV-B1" not in page
    # INV-A1: 120.15 less 20.15 paid; INV-A2: 120.15 less the credit note's 12.10.
    assert "€100.00" in page and "€108.05" in page
    assert "overdue" in page  # INV-A1 and INV-A2 are past due
    # The open balance over all unpaid invoices: 100.00 + 108.05 + 605.00.
    assert "€813.05" in page
    assert 'aria-sort="descending"' in page


def test_search_by_number_and_by_reference(client, billing):
    sign_in(client, "alice@example.com")
    assert numbers(client.get("/invoices?q=a3").data) == ["INV-A3"]
    assert numbers(client.get("/invoices?q=PO-777").data) == ["INV-A1"]  # not Bob's
    assert numbers(client.get("/invoices?q=100%25").data) == []  # LIKE wildcards are literal


@pytest.mark.parametrize("query, expected", [
    ("status=partially_paid", ["INV-A1"]),
    ("kind=credit_note", ["CN-A1"]),
    ("kind=invoice&from=2026-10-01", ["INV-A3", "INV-A2"]),
    ("from=2026-09-15&to=2026-10-03", ["INV-A2"]),
    ("overdue=1", ["INV-A2", "INV-A1"]),
    ("sort=amount", ["INV-A3", "INV-A2", "INV-A1", "CN-A1"]),
    ("sort=amount&dir=asc", ["CN-A1", "INV-A1", "INV-A2", "INV-A3"]),
    ("sort=due&dir=asc", ["INV-A1", "INV-A2", "INV-A3", "CN-A1"]),
    ("status=nonsense&kind=nonsense&sort=nonsense", ["INV-A3", "CN-A1", "INV-A2", "INV-A1"]),
])
def test_filters_and_sorting(client, billing, query, expected):
    sign_in(client, "alice@example.com")
    response = client.get(f"/invoices?{query}", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert numbers(response.data) == expected


def test_bad_date_is_named_not_a_500(client, billing):
    sign_in(client, "alice@example.com")
    response = client.get("/invoices?from=03/11/2026")
    assert response.status_code == 200
    assert b"Issued from: enter a date like 2026-11-03." in response.data


def test_htmx_gets_the_table_alone_and_links_keep_the_state(client, billing, session):
    import_rows(session, [invoice_json(f"INV-P{n:02}", "C1", issue_date="2026-08-01")
                          for n in range(25)])
    sign_in(client, "alice@example.com")
    full = client.get("/invoices?kind=invoice&sort=amount")
    assert b"<html" in full.data and b'id="invoice-filters"' in full.data
    assert "HX-Request" in full.headers.get("Vary", "")
    partial = client.get("/invoices?kind=invoice&sort=amount", headers={"HX-Request": "true"})
    assert b"<html" not in partial.data
    html = partial.data.decode()
    # The next page: a plain link for no-JS use, and the same URL for htmx, pushed to history.
    next_link = re.search(r'<a href="([^"]+)" hx-get="([^"]+)" hx-target="#invoice-table" '
                          r'hx-push-url="true" rel="next">', html)
    assert next_link and next_link.group(1) == next_link.group(2)
    url = next_link.group(1).replace("&amp;", "&")
    assert "kind=invoice" in url and "sort=amount" in url and "page=2" in url
    second = client.get(url)  # what a bookmark or the back button loads: the whole page
    assert b"<html" in second.data and b"page 2 of 2" in second.data
    assert len(numbers(second.data)) == 28 - 20
    restore = client.get(url, headers={"HX-Request": "true",
                                       "HX-History-Restore-Request": "true"})
    assert b"<html" in restore.data  # htmx's history restore needs the whole page


# Statements per page (transaction control, such as SQLite's BEGIN IMMEDIATE or the
# tests' savepoints, not counted): the sign-in session with
# its user and customer; the list's page with its count, payments and credit notes of the
# page (and, on the whole page, of the unpaid invoices for the open balance, plus the inbox);
# the invoice with its seller, customer, contacts, lines and charges, then its deliveries,
# disputes, payments, credit notes, timeline (2) and signature requests.
TABLE_STATEMENTS, LIST_STATEMENTS, INVOICE_STATEMENTS = 4, 6, 13


def page_statements(app, client, path: str, **kwargs) -> list[str]:
    """The statements a signed-in visit to ``path`` runs after a first visit.

    The first visit may write once (notifications marked delivered, messages viewed).
    """
    assert client.get(path, **kwargs).status_code == 200
    with counting_statements(app) as statements:
        assert client.get(path, **kwargs).status_code == 200
    return [s for s in statements
            if s.split(None, 1)[0] not in ("BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK")]


def test_a_page_costs_the_same_statements_however_many_rows(client, billing, session, app):
    sign_in(client, "alice@example.com")
    htmx = {"headers": {"HX-Request": "true"}}
    few = page_statements(app, client, "/invoices", **htmx)
    import_rows(session, [invoice_json(f"INV-N{n:02}", "C1") for n in range(16)])
    for n in range(16):
        record_payment(session, invoice(session, f"INV-N{n:02}"), amount=Decimal("1.00"),
                       received_at=datetime.now(UTC), method=PaymentMethod.CARD,
                       provider="test", provider_reference=f"N{n}", actor="test")
    many = page_statements(app, client, "/invoices", **htmx)
    assert len(numbers(client.get("/invoices", **htmx).data)) == 20
    assert len(many) == len(few) <= TABLE_STATEMENTS, many
    assert len(page_statements(app, client, "/invoices")) <= LIST_STATEMENTS
    # An invoice with a payment and a credit note, and the credit note.
    for number in ("INV-A2", "CN-A1", "INV-N03"):
        statements = page_statements(app, client, f"/invoices/{number}")
        assert len(statements) <= INVOICE_STATEMENTS, (number, statements)


def test_invoice_page_lines_vat_totals_payments_and_open_balance(client, billing, session):
    record_payment(session, invoice(session, "INV-A1"), amount=Decimal("5.00"),
                   received_at=datetime(2026, 9, 25, tzinfo=UTC), method=PaymentMethod.CARD,
                   provider="stripe", provider_reference="re_1", kind=PaymentKind.REFUND,
                   actor="test")
    sign_in(client, "alice@example.com")
    page = client.get("/invoices/INV-A1").data.decode()
    assert "Fibre internet" in page and "Electricity" in page
    assert 'data-label="Unit price"' in page  # the phone layout names each value
    assert "€120.15" in page and "€8.68" in page and "€3.97" in page
    assert "€20.15" in page and "-€5.00" in page and "refund" in page
    assert "€105.00" in page  # 120.15 - 20.15 + 5.00 refunded
    assert "Dispute this invoice" in page


def test_credit_notes_link_to_the_invoice_and_back(client, billing):
    sign_in(client, "alice@example.com")
    invoice_page = client.get("/invoices/INV-A2").data.decode()
    assert 'href="/invoices/CN-A1"' in invoice_page and "€12.10" in invoice_page
    note_page = client.get("/invoices/CN-A1").data.decode()
    assert 'href="/invoices/INV-A2"' in note_page
    assert "Dispute this invoice" not in note_page


def test_timeline_tells_the_customer_in_plain_words(client, billing, session):
    document = invoice(session, "INV-A2")
    deliveries = send(session, document)
    email = next(d for d in deliveries if d.channel.value == "email")
    # A failure with internal details the customer must never see.
    session.execute(sa.update(Delivery).where(Delivery.id == email.id).values(
        state=DeliveryState.SENDING))
    transition(session, email.id, DeliveryState.SENDING, DeliveryState.FAILED,
               event="delivery.failed", actor="test",
               payload={"error": "550 5.1.1 <c1@example.com> unknown, from 10.1.2.3"},
               last_error="550 5.1.1 unknown")
    reminder = send(session, document, message_type="reminder",
                    subject_key=f"reminder:{invoice_key(document)}:7")
    assert reminder
    record_payment(session, document, amount=Decimal("50.00"),
                   received_at=datetime.now(UTC), method=PaymentMethod.CARD,
                   provider="stripe", provider_reference="pi_1", actor="test")
    sign_in(client, "alice@example.com")
    client.get("/invoices/INV-A2")  # opening it marks the deliveries viewed
    page = client.get("/invoices/INV-A2").data.decode()
    history = page[page.index("<h2>History</h2>"):]
    assert "Invoice issued on" in history
    assert re.search(r"Sent by email to c…@example\.com on \d+ \w+ 2026 \d\d:\d\d", history)
    assert "Delivered to your portal inbox on" in history
    assert "Reminder sent by email to c…@example.com" in history
    assert "Reminder delivered to your portal inbox on" in history
    assert "could not be delivered" in history
    assert "Payment of €50.00 received on" in history
    assert history.count("Viewed on") == 1  # one opening, several deliveries: said once
    for secret in ("c1@example.com", "10.1.2.3", "550", "smtp.example", "portal:user"):
        assert secret not in history
    events = session.scalars(sa.select(Delivery.state).join(Message).where(
        Message.recipient.has(recipient_key=recipient_key(document.customer_id)),
        Delivery.channel == "portal"))
    assert DeliveryState.VIEWED in set(events)  # mark-as-viewed still feeds the log


def test_downloads_are_the_customers_own(client, billing):
    sign_in(client, "alice@example.com")
    ubl = client.get("/invoices/INV-A1/ubl")
    assert ubl.status_code == 200 and ubl.mimetype == "application/xml"
    assert b"INV-A1" in ubl.data and ubl.headers["Cache-Control"] == "private, no-cache"
    assert client.get("/invoices/INV-B1/ubl").status_code == 404
    assert client.get("/invoices/INV-B1/pdf").status_code == 404


@pytest.mark.parametrize("path", ["/invoices/INV-B1", "/invoices/INV-B1/pdf",
                                  "/invoices/INV-B1/ubl", "/invoices/NO-SUCH"])
def test_another_customers_invoice_is_404(client, billing, path):
    sign_in(client, "alice@example.com")
    assert client.get(path).status_code == 404


def test_list_needs_sign_in(client, billing):
    assert client.get("/invoices/INV-A1").status_code == 302
