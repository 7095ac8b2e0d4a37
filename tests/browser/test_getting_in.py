"""Getting in, in a real browser: an emailed sign-in link, two-step sign-in with an
authenticator app and a recovery code, and signing out another device."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from portal.auth import tokens
from portal.models import User
from portal.models.sign_in import AccountToken, TokenPurpose
from tests.browser.conftest import VIEWPORTS, Tab


def _issue_link(live_server, email: str,
                purpose: TokenPurpose = TokenPurpose.MAGIC_LINK) -> str:
    """What the account-email task does before it mails the link: make the row's token.

    The live server runs no worker, so the test plays the mail task's part; the
    email itself is tested in tests/portal against a real SMTP peer.
    """
    with live_server.database() as session:
        row = session.scalars(
            sa.select(AccountToken).join(User).where(
                User.email == email, AccountToken.purpose == purpose)
            .order_by(AccountToken.id.desc())).first()
        assert row is not None, "asking for a link made no token"
        return tokens.issue(session, row, live_server.app.config["HERALD"])


def _choose_password(tab: Tab, path: str, heading: str, password: str) -> None:
    """Open an emailed link's page (checked as step "choose") and save ``password`` there."""
    page = tab.page
    tab.goto(path)
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    tab.check("choose")
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("New password again").fill(password)
    page.get_by_role("button", name="Save password").click()


def test_sign_in_with_an_emailed_link(tab: Tab, live_server):
    person = live_server.new_customer()
    page = tab.page
    tab.goto("/sign-in")
    tab.check("sign-in")
    page.get_by_role("link", name="Email me a sign-in link instead").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in with an email link")
    tab.check("ask-for-a-link")
    page.get_by_label("Email").fill(person.email)
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("status")).to_contain_text(f"If {person.email} has a sign-in")
    tab.check("link-sent")

    link = f"/sign-in/link/{_issue_link(live_server, person.email)}"
    tab.goto(link)
    expect(page.get_by_text(f"Sign in as {person.email} on this device.")).to_be_visible()
    tab.check("link-opened")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/invoices$"))
    tab.check("signed-in")

    # Used once, the link is gone.
    page.context.clear_cookies()
    response = tab.goto(link)
    assert response.status == 404
    tab.check("link-used")


def test_two_step_sign_in_with_an_app_and_with_a_recovery_code(tab: Tab, live_server):
    person = live_server.new_customer()
    page = tab.page
    tab.sign_in(person)
    page.get_by_role("link", name="Security").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Security")
    tab.check("security")
    page.get_by_role("button", name="Set up two-step sign-in").click()
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    tab.check("set-up")
    secret = page.locator("main ol code").inner_text().strip()
    app = pyotp.TOTP(secret)

    page.get_by_label(re.compile("code", re.I)).fill("000000" if app.now() != "000000"
                                                     else "111111")
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()
    tab.check("wrong-code")
    page.get_by_label(re.compile("code", re.I)).fill(app.now())
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-step sign-in is on")
    codes = page.locator(".recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    tab.check("recovery-codes")
    page.get_by_role("button", name="I have saved them").click()
    tab.check("security-on")
    tab.sign_out()

    # The password alone is not enough now: the app's next code finishes the sign-in
    # (the code used to turn it on cannot be used again).
    tab.sign_in(person)
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your code")
    tab.check("enter-code")
    page.get_by_label(re.compile("code", re.I)).fill(app.at(time.time() + app.interval))
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/invoices$"))
    tab.check("signed-in-with-app")
    tab.sign_out()

    tab.sign_in(person)
    page.get_by_label(re.compile("code", re.I)).fill(codes[0])
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/invoices$"))
    expect(page.get_by_text("You used a recovery code")).to_be_visible()
    tab.check("signed-in-with-recovery-code")


@pytest.mark.parametrize("viewport", ["desktop"])
def test_sign_out_another_device(tab: Tab, live_server, browser):
    person = live_server.new_customer()
    phone = browser.new_context(**VIEWPORTS["phone"])
    try:
        other = phone.new_page()
        other.goto(f"{live_server.url}/sign-in")
        other.get_by_label("Email").fill(person.email)
        other.get_by_label("Password").fill(person.password)
        other.get_by_role("button", name="Sign in").click()
        expect(other).to_have_url(re.compile(r"/invoices$"))

        page = tab.page
        tab.sign_in(person)
        tab.check("invoice-list")
        page.get_by_role("link", name="Security").click()
        devices = page.locator("ul.devices > li")
        expect(devices).to_have_count(2)
        tab.check("two-devices")
        page.get_by_role("button", name="Sign out everywhere else").click()
        expect(devices).to_have_count(1)
        expect(devices.get_by_text("This device", exact=True)).to_be_visible()
        tab.check("one-device")

        other.reload()
        expect(other).to_have_url(re.compile(r"/sign-in"))
    finally:
        phone.close()


def test_create_a_sign_in_with_an_invoice(tab: Tab, live_server):
    person = live_server.new_customer(sign_in=False)
    number = person.invoices[0]
    page = tab.page
    tab.goto("/sign-in")
    tab.check("sign-in")
    page.get_by_role("link", name=re.compile("Create a sign-in with one of your invoices")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Create a sign-in")
    tab.check("register")

    def fill(total: str) -> None:
        page.get_by_label("Account or customer number").fill(person.customer_number)
        page.get_by_label("Number of one of your invoices").fill(number)
        page.get_by_label("Total amount of that invoice").fill(total)
        page.get_by_label("Your name").fill("New Customer")
        page.get_by_label("Email").fill(person.email)
        page.get_by_role("button", name="Create my sign-in").click()

    # A total that is not the invoice's proves nothing.
    fill("119.15")
    expect(page.get_by_role("alert")).to_contain_text("These details do not match an invoice")
    tab.check("details-wrong")
    fill("120,15")  # typed the Dutch way
    expect(page.get_by_role("status")).to_contain_text(f"we have emailed a link to {person.email}")
    tab.check("link-sent")

    # The link in that email proves the address; the password is chosen there.
    token = _issue_link(live_server, person.email, TokenPurpose.REGISTRATION)
    _choose_password(tab, f"/register/{token}", "Almost done: choose your password",
                     person.password)
    expect(page).to_have_url(re.compile(r"/invoices$"))
    expect(page.get_by_role("link", name=number, exact=True)).to_be_visible()
    tab.check("signed-in")

    with live_server.database() as session:
        user = session.scalars(sa.select(User).where(User.email == person.email)).one()
        assert user.customer.number == person.customer_number


def test_forgotten_password_reset_by_an_emailed_link(tab: Tab, live_server):
    person = live_server.new_customer()
    new_password = "a brand new passphrase"
    page = tab.page
    tab.goto("/sign-in")
    tab.check("sign-in")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Forgot your password?")
    tab.check("forgot")
    page.get_by_label("Email").fill(person.email)
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("status")).to_contain_text(f"If {person.email} has a sign-in")
    tab.check("link-sent")

    token = _issue_link(live_server, person.email, TokenPurpose.PASSWORD_RESET)
    _choose_password(tab, f"/password/reset/{token}", "Choose a new password", new_password)
    expect(page.get_by_role("status")).to_contain_text("Your password is changed")
    tab.check("changed")

    tab.sign_in(person)  # the old password
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    tab.sign_in(person, password=new_password)
    expect(page).to_have_url(re.compile(r"/invoices$"))
    tab.check("signed-in")
