"""Switching the portal to Dutch and Spanish in a real browser, and the choice being kept."""

from __future__ import annotations

import re

import sqlalchemy as sa
from playwright.sync_api import expect

from portal.models import Customer
from tests.browser.conftest import Tab


def _switch(tab: Tab, label: str, button: str, language: str) -> None:
    tab.page.get_by_label(label, exact=True).select_option(language)
    tab.page.get_by_role("button", name=button).click()
    expect(tab.page.locator("html")).to_have_attribute("lang", language)


def test_switch_to_dutch_then_spanish_and_keep_it_on_the_next_sign_in(tab: Tab, live_server):
    person = live_server.new_customer()
    number = person.invoices[0]
    page = tab.page
    tab.sign_in(person)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your invoices")
    tab.check("english")

    _switch(tab, "Language", "Change language", "nl")
    expect(page).to_have_url(re.compile(r"/invoices$"))  # back on the same page
    expect(page.get_by_role("heading", level=1)).to_have_text("Uw facturen")
    tab.check("dutch")
    page.get_by_role("link", name=number, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Factuur {number}")
    tab.check("dutch-invoice")

    _switch(tab, "Taal", "Taal wijzigen", "es")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Factura {number}")
    tab.check("spanish-invoice")

    with live_server.database() as session:
        customer = session.scalars(sa.select(Customer).where(
            Customer.number == person.customer_number)).one()
        assert customer.language == "es"

    # Another device (no cookies, an English browser): the customer's choice wins.
    page.get_by_role("button", name="Cerrar sesión").click()
    page.context.clear_cookies()
    tab.sign_in(person)
    expect(page.get_by_role("heading", level=1)).to_have_text("Sus facturas")
    tab.check("spanish-after-sign-in")


def test_a_visitor_chooses_a_language_before_signing_in(tab: Tab, live_server):
    page = tab.page
    tab.goto("/sign-in")
    tab.check("sign-in")
    _switch(tab, "Language", "Change language", "nl")
    expect(page.get_by_role("heading", level=1)).to_have_text("Aanmelden")
    expect(page.get_by_role("button", name="Aanmelden")).to_be_visible()
    tab.check("sign-in-dutch")
    _switch(tab, "Taal", "Taal wijzigen", "es")
    expect(page.get_by_role("heading", level=1)).to_have_text("Iniciar sesión")
    tab.check("sign-in-spanish")
