"""Signing in, seeing one's invoices, downloading a PDF and signing out, in a real browser."""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.browser.conftest import Tab


def test_sign_in_open_an_invoice_download_its_pdf_and_sign_out(tab: Tab, live_server):
    seeded = live_server.seeded
    page = tab.page
    tab.sign_in(seeded.alice)
    expect(page).to_have_url(re.compile(r"/invoices$"))
    tab.check("invoice-list")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your invoices")
    listing = page.locator("#invoice-table")
    for number in seeded.alice.invoices:
        expect(listing.get_by_role("link", name=number, exact=True)).to_be_visible()
    # Another customer's invoice is never listed.
    expect(listing.get_by_text(seeded.bob.invoices[0])).to_have_count(0)

    page.get_by_role("link", name=seeded.open_invoice, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/invoices/{seeded.open_invoice}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice {seeded.open_invoice}")
    expect(page.get_by_text("€120.15").first).to_be_visible()  # the hand-worked total
    tab.check("invoice")

    with page.expect_download() as info:
        page.get_by_role("link", name="PDF", exact=True).click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename == f"{seeded.open_invoice}.pdf"
    data = Path(download.path()).read_bytes()
    assert data.startswith(b"%PDF-")
    text = "".join(p.extract_text() or "" for p in PdfReader(BytesIO(data)).pages)
    assert seeded.open_invoice in text

    # Another customer's invoice, even by its exact address, is not found.
    response = tab.goto(f"/invoices/{seeded.bob.invoices[0]}")
    assert response.status == 404
    tab.check("another-customers-invoice")

    tab.sign_out()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    tab.check("signed-out")
    # Signed out means signed out: the list sends the visitor back to sign in.
    tab.goto("/invoices")
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))
    tab.check("invoices-after-sign-out")


def test_wrong_password_shows_the_error(tab: Tab, live_server):
    page = tab.page
    tab.sign_in(live_server.seeded.alice, password="not the password")
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    expect(page.get_by_role("alert")).to_contain_text(
        "That email address and password do not match")
    # The email stays filled in, the password does not.
    expect(page.get_by_label("Email")).to_have_value(live_server.seeded.alice.email)
    expect(page.get_by_label("Password")).to_have_value("")
    tab.check("wrong-password")


def _tab_to(tab: Tab, description: str, is_target: str, most: int = 15) -> None:
    """Press Tab until the focused element matches the JS predicate ``is_target``."""
    for _ in range(most):
        tab.page.keyboard.press("Tab")
        if tab.page.evaluate(f"() => {{ const el = document.activeElement; return {is_target}; }}"):
            return
    pytest.fail(f"{description} was not reached within {most} presses of Tab")


@pytest.mark.parametrize("viewport", ["desktop"])
def test_keyboard_only_sign_in_and_open_an_invoice(tab: Tab, live_server):
    seeded = live_server.seeded
    page = tab.page
    tab.goto("/sign-in")
    tab.check("sign-in")
    # The first Tab reaches the skip link, which shows itself when focused.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()

    _tab_to(tab, "the email field", "el.type === 'email'")
    page.keyboard.type(seeded.alice.email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(seeded.alice.password)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/invoices$"))
    tab.check("invoice-list")

    _tab_to(tab, f"the link to {seeded.open_invoice}",
            f"el.tagName === 'A' && el.textContent.trim() === '{seeded.open_invoice}'", most=30)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice {seeded.open_invoice}")
    tab.check("invoice")


def test_filter_and_search_the_list_without_reloading(tab: Tab, live_server):
    seeded = live_server.seeded
    page = tab.page
    tab.sign_in(seeded.alice)
    tab.check("invoice-list")
    listing = page.locator("#invoice-table")
    page.evaluate("() => { window.notReloaded = true; }")  # gone if the page reloads

    # On a phone the filters fold away under "More filters".
    if not page.get_by_label("Status").is_visible():
        page.get_by_text("More filters").click()
    page.get_by_label("Status").select_option("paid")
    expect(page).to_have_url(re.compile(r"status=paid"))
    expect(listing.get_by_role("link", name=seeded.paid_invoice, exact=True)).to_be_visible()
    expect(listing.get_by_role("link", name=seeded.open_invoice, exact=True)).to_have_count(0)
    tab.check("paid-only")

    page.get_by_label("Status").select_option("")
    page.get_by_label("Search by number or reference").fill("0003")
    expect(page).to_have_url(re.compile(r"q=0003"))
    expect(listing.get_by_role("link", name=re.compile(r"^INV-"))).to_have_text(["INV-2026-0003"])
    tab.check("searched")
    assert page.evaluate("() => window.notReloaded === true"), "the page reloaded"
