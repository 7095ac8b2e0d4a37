"""Languages: the customer's setting, the browser, the switcher, localised amounts."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from distribution.events import Event
from portal.formatting import money
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.models import Customer
from tests.factories import invoice_json, make_customer, make_organisation, make_user

PASSWORD = "correct horse battery"
TRANSLATIONS = Path(__file__).resolve().parents[2] / "portal" / "translations"
NBSP = "\xa0"


def compile_catalogs(directory: Path = TRANSLATIONS) -> list[Path]:
    """What ``make catalogs`` does: each .po beside its .mo, recompiled when older."""
    compiled = []
    for po_path in sorted(directory.glob("*/LC_MESSAGES/messages.po")):
        mo_path = po_path.with_suffix(".mo")
        if not mo_path.exists() or mo_path.stat().st_mtime < po_path.stat().st_mtime:
            with po_path.open("rb") as po_file:
                catalog = read_po(po_file)
            with mo_path.open("wb") as mo_file:
                write_mo(mo_file, catalog)
        compiled.append(mo_path)
    return compiled


@pytest.fixture(scope="module", autouse=True)
def catalogs():
    """Running pytest alone (without ``make``) must still see the translations."""
    compile_catalogs()


@pytest.fixture
def customer_with_big_invoice(session):
    """A customer whose invoice totals €1,234.56 (1,020.30 net + 21 % VAT of 214.26)."""
    org = make_organisation(session)
    customer = make_customer(session, org, "C1", name="Alice")
    document = invoice_json("INV-K1", "C1", lines=[
        {"item_name": "Fibre internet", "quantity": "1", "unit_code": "C62",
         "net_price": "1020.30", "vat_category": "S", "vat_rate": "21"},
    ])
    import_documents(session, [document_from_mapping(document, Locator("t", "1"),
                                                     source="json")], file="t")
    make_user(session, email="alice@example.com", customer=customer)
    return customer


def sign_in(client, email="alice@example.com"):
    page = client.get("/sign-in")
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1)
    return client.post("/sign-in", data={"csrf_token": token.decode(), "email": email,
                                         "password": PASSWORD})


def page_token(page) -> str:
    return re.search(rb'"X-CSRFToken": "([^"]+)"', page.data).group(1).decode()


def html_lang(page) -> str:
    return re.search(r'<html lang="([^"]+)"', page.get_data(as_text=True)).group(1)


@pytest.mark.parametrize(("language", "heading", "total", "due_label", "vat"), [
    ("en", "Invoice INV-K1", "€1,234.56", "Amount due", "21%"),
    ("nl", "Factuur INV-K1", f"€{NBSP}1.234,56", "Te betalen", "21%"),
    ("es", "Factura INV-K1", f"1.234,56{NBSP}€", "Importe a pagar", f"21{NBSP}%"),
])
def test_invoice_page_speaks_the_customers_language(client, session, customer_with_big_invoice,
                                                     language, heading, total, due_label, vat):
    customer_with_big_invoice.language = language
    session.flush()
    sign_in(client)
    page = client.get("/invoices/INV-K1", headers={"Accept-Language": "de"})
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert html_lang(page) == language
    assert f"<h1>{heading}</h1>" in text
    assert total in text and due_label in text
    assert vat in text
    # The date of issue, 1 October 2026, in the reader's words.
    assert {"en": "1 Oct 2026", "nl": "1 okt 2026", "es": "1 oct 2026"}[language] in text


def test_customers_setting_wins_over_the_browser(client, session, customer_with_big_invoice):
    customer_with_big_invoice.language = "nl"
    session.flush()
    sign_in(client)
    page = client.get("/invoices", headers={"Accept-Language": "es-ES,es;q=0.9"})
    assert html_lang(page) == "nl" and "<h1>Uw facturen</h1>" in page.get_data(as_text=True)


@pytest.mark.parametrize(("header", "language", "heading"), [
    ("nl-BE,nl;q=0.9,en;q=0.5", "nl", "Aanmelden"),
    ("es-ES,es;q=0.9", "es", "Iniciar sesión"),
    ("de-DE,de;q=0.9", "en", "Sign in"),
    ("", "en", "Sign in"),
])
def test_visitors_get_the_browsers_language_then_english(client, header, language, heading):
    page = client.get("/sign-in", headers={"Accept-Language": header} if header else {})
    assert html_lang(page) == language
    assert f"<h1>{heading}</h1>" in page.get_data(as_text=True)


def test_form_labels_and_errors_are_translated(client):
    page = client.get("/sign-in", headers={"Accept-Language": "es"})
    response = client.post("/sign-in", headers={"Accept-Language": "es"},
                           data={"csrf_token": page_token(page), "email": "", "password": ""})
    text = response.get_data(as_text=True)
    assert "Correo electrónico" in text and "Contraseña" in text
    assert "Introduzca el correo electrónico que usa para sus facturas." in text


def test_switching_language_is_saved_on_the_customer(app, client, session,
                                                     customer_with_big_invoice):
    sign_in(client)
    page = client.get("/invoices/INV-K1")
    assert html_lang(page) == "en"
    response = client.post("/language", data={"csrf_token": page_token(page), "language": "es",
                                              "next": "/invoices/INV-K1"})
    assert response.status_code == 303 and response.location.endswith("/invoices/INV-K1")
    assert "<h1>Factura INV-K1</h1>" in client.get("/invoices/INV-K1").get_data(as_text=True)

    session.expire_all()
    customer = session.get(Customer, customer_with_big_invoice.id)
    assert customer.language == "es"
    events = session.scalars(sa.select(Event).where(
        Event.kind == "customer.language_changed")).all()
    assert [(e.subject_type, e.subject_key, e.payload) for e in events] == [
        ("customer", f"{customer.organisation_id}:C1", {"from": "en", "to": "es"})]

    # Another device, whose browser asks for Dutch, still opens in the saved Spanish.
    other_device = app.test_client()
    sign_in(other_device)
    page = other_device.get("/invoices", headers={"Accept-Language": "nl"})
    assert html_lang(page) == "es" and "<h1>Sus facturas</h1>" in page.get_data(as_text=True)


def test_visitor_can_switch_language_for_the_session(client):
    page = client.get("/sign-in")
    response = client.post("/language", data={"csrf_token": page_token(page),
                                              "language": "nl", "next": "/sign-in"})
    assert response.status_code == 303
    page = client.get("/sign-in", headers={"Accept-Language": "es"})
    assert html_lang(page) == "nl" and "<h1>Aanmelden</h1>" in page.get_data(as_text=True)


def test_switcher_is_a_labelled_form_with_every_language(client):
    text = client.get("/sign-in").get_data(as_text=True)
    form = re.search(r'<form method="post" action="/language".*?</form>', text, re.S).group(0)
    assert 'name="csrf_token"' in form
    assert '<label for="language-choice">' in form and 'id="language-choice"' in form
    for code, name in (("en", "English"), ("nl", "Nederlands"), ("es", "Español")):
        assert f'value="{code}" lang="{code}"' in form and name in form
    assert '<button type="submit"' in form  # works with a keyboard and without script


def test_switching_needs_the_csrf_token(client, session, customer_with_big_invoice):
    sign_in(client)
    response = client.post("/language", data={"language": "es"})
    assert response.status_code == 400
    session.expire_all()
    assert session.get(Customer, customer_with_big_invoice.id).language == "en"


@pytest.mark.parametrize("language", ["de", "", "english"])
def test_unknown_language_changes_nothing(client, session, customer_with_big_invoice, language):
    sign_in(client)
    page = client.get("/invoices")
    client.post("/language", data={"csrf_token": page_token(page), "language": language})
    session.expire_all()
    assert session.get(Customer, customer_with_big_invoice.id).language == "en"
    assert not session.scalars(sa.select(Event).where(
        Event.kind == "customer.language_changed")).all()


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil",
                                    "evil"])
def test_switcher_returns_only_to_this_site(client, target):
    page = client.get("/sign-in")
    response = client.post("/language", data={"csrf_token": page_token(page),
                                              "language": "es", "next": target})
    assert response.status_code == 303
    assert "evil" not in response.location


def test_error_pages_are_translated(client):
    page = client.get("/no-such-page", headers={"Accept-Language": "nl"})
    assert page.status_code == 404
    assert "Hier is niets te vinden." in page.get_data(as_text=True)


def test_formatting_outside_a_request_is_british_english(app):
    assert money(Decimal("1234.56"), "EUR") == "€1,234.56"
    assert money(Decimal("1234.56"), "EUR", "nl_BE") == f"€{NBSP}1.234,56"
    with app.test_request_context("/", headers={"Accept-Language": "es"}):
        assert money(Decimal("1234.56"), "EUR") == f"1.234,56{NBSP}€"


def test_a_page_can_render_a_message_in_another_language_and_back(app):
    # Emails to a customer are rendered in their language while serving a page in the
    # reader's: each string follows the locale in force when it is rendered.
    from flask import render_template_string
    from flask_babel import force_locale

    from portal.formatting import money as format_money

    template = "{{ _('Invoices') }} {{ amount|money('EUR') }}"
    with app.test_request_context("/", headers={"Accept-Language": "es"}):
        compile_catalogs()
        assert render_template_string(template, amount=Decimal("1234.5")) == \
            f"Facturas 1.234,50{NBSP}€"
        with force_locale("nl"):
            assert render_template_string(template, amount=Decimal("1234.5")) == \
                f"Facturen €{NBSP}1.234,50"
            assert format_money(Decimal("2"), "EUR") == f"€{NBSP}2,00"
        assert render_template_string(template, amount=Decimal("1234.5")) == \
            f"Facturas 1.234,50{NBSP}€"
