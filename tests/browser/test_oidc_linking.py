"""Linking a staff sign-in to the company's identity provider, in a real browser: a staff
member links it from the Security page (the browser goes to the local provider on loopback
and back), signs in through it, and unlinks it; an administrator removes a colleague's link
on the Staff page. Each page is checked with axe-core on a desktop and a (dark) phone.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from portal.auth import oidc as oidc_client
from portal.auth.oidc_routes import provider_origin
from portal.models import Role, StaffIdentity, User
from portal.oidc_settings import OidcSettings
from portal.security_headers import EXTENSION_KEY, allow_source
from tests.browser.conftest import Tab
from tests.browser.seed import PASSWORD
from tests.browser.test_ops_console import _sign_in_admin, _staff
from tests.peers.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider, oidc_provider

__all__ = ["oidc_provider"]  # the fixture


@pytest.fixture
def provider(live_server, monkeypatch, oidc_provider: OidcProvider) -> OidcProvider:
    """The live server signing staff in through the local provider ("Example SSO")."""
    oidc = OidcSettings(issuer=oidc_provider.issuer, client_id=CLIENT_ID,
                        client_secret=CLIENT_SECRET, provider_name="Example SSO")
    app = live_server.app
    monkeypatch.setitem(app.config, "HERALD", dataclasses.replace(app.config["HERALD"], oidc=oidc))
    # What an app built with the provider configured allows (portal.auth.oidc_routes).
    monkeypatch.setitem(app.extensions, EXTENSION_KEY,
                        {k: list(v) for k, v in app.extensions[EXTENSION_KEY].items()})
    allow_source(app, "form-action", provider_origin(oidc))
    oidc_provider.redirect_uris = [f"{live_server.url}/sign-in/oidc/callback"]
    oidc_client.forget_cached()
    yield oidc_provider
    oidc_client.forget_cached()


def test_staff_member_links_signs_in_with_and_unlinks_the_provider(tab: Tab, live_server,
                                                                   provider):
    email = f"link-{tab.viewport}@example.com"
    # At the provider the person has another address: only the link can find the account.
    provider.person = {"sub": f"browser-{tab.viewport}", "email_verified": True,
                       "email": f"olivia-{tab.viewport}@corp.example", "name": "Olivia"}
    person = _staff(live_server, Role.BILLING_OPERATOR, email)
    page = tab.page
    # The form's button by its exact name: the provider's "Staff: sign in with ..." is one too.
    tab.goto("/sign-in")
    tab.check("sign-in")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_load_state()
    tab.check("ops-overview")  # where staff land
    tab.goto("/security")
    expect(page.get_by_role("heading", level=1)).to_have_text("Security")
    tab.check("security")

    page.get_by_label("Current password").nth(0).fill(PASSWORD)
    page.get_by_role("button", name="Link sign-in with Example SSO").click()
    page.wait_for_url(re.compile(r"/security$"))
    expect(page.get_by_text("Linked: you can now sign in with Example SSO.")).to_be_visible()
    expect(page.locator("main")).to_contain_text(f"olivia-{tab.viewport}@corp.example")
    tab.check("security-linked")

    tab.sign_out()
    tab.check("signed-out")
    page.get_by_role("button", name="Staff: sign in with Example SSO").click()
    page.wait_for_url(re.compile(r"/ops$"))
    tab.check("signed-in-through-the-provider")
    with live_server.database() as session:
        [identity] = session.scalars(sa.select(StaffIdentity).join(User).where(
            User.email == email)).all()
        assert identity.subject == f"browser-{tab.viewport}"

    tab.goto("/security")
    page.get_by_role("button", name="Unlink this account").click()
    page.wait_for_load_state()
    expect(page.get_by_text("Unlinked: that identity-provider account no longer signs you in."
                            )).to_be_visible()
    expect(page.get_by_role("button", name="Link sign-in with Example SSO")).to_be_visible()
    tab.check("security-unlinked")
    with live_server.database() as session:
        assert session.scalars(sa.select(StaffIdentity).join(User).where(
            User.email == email)).all() == []


def test_administrator_removes_a_colleagues_link(tab: Tab, live_server):
    colleague = f"linked-{tab.viewport}@example.com"
    _staff(live_server, Role.SUPPORT_AGENT, colleague)
    with live_server.database() as session:
        user_id = session.scalars(sa.select(User.id).where(User.email == colleague)).one()
        session.add(StaffIdentity(user_id=user_id, issuer="https://sso.example.com",
                                  subject=f"s-{tab.viewport}",
                                  email=f"linked-{tab.viewport}@corp.example"))
    page = tab.page
    _sign_in_admin(tab, _staff(live_server, Role.ADMIN, f"admin-link-{tab.viewport}@example.com"))
    page.get_by_role("link", name="Staff", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Staff")
    section = page.locator("section").filter(
        has=page.get_by_role("heading", name="Linked identity-provider accounts"))
    row = section.get_by_role("row").filter(has_text=f"linked-{tab.viewport}@corp.example")
    expect(row).to_contain_text("https://sso.example.com")
    tab.check("staff-links")
    row.get_by_role("button", name=re.compile(r"^Remove link: ")).click()
    page.wait_for_load_state()
    expect(page.get_by_text(re.compile(
        rf"can no longer sign in with the identity-provider account "
        rf"linked-{tab.viewport}@corp\.example"))).to_be_visible()
    tab.check("staff-link-removed")
    with live_server.database() as session:
        assert session.scalars(sa.select(StaffIdentity).where(
            StaffIdentity.user_id == user_id)).all() == []
