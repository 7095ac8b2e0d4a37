"""Administrators' pages in Chromium: invite a colleague and change a role on the Staff page,
create an API key (shown once) and revoke it on the API keys page; axe-core on a desktop and
a (dark) phone, screenshots under test-artifacts/browser/."""

from __future__ import annotations

import re

import pyotp
import sqlalchemy as sa
from playwright.sync_api import expect

from portal.models import ApiKey, Role, User
from portal.models.base import utcnow
from tests.browser.conftest import Tab
from tests.browser.seed import PASSWORD, Person
from tests.factories import make_user
from tests.totp_codes import previous_step_code


def _admin(tab: Tab, purpose: str) -> Person:
    email = f"admin-{purpose}-{tab.viewport}@example.com"
    with tab.live.database() as session:
        user = make_user(session, email=email, role=Role.ADMIN, password=PASSWORD)
        user.totp_secret = pyotp.random_base32()
        user.totp_enabled_at = utcnow()
        secret = user.totp_secret
    person = Person(email=email, customer_number="", language="en", invoices=())
    tab.sign_in(person)
    tab.check("sign-in-code")
    tab.page.get_by_label("Code").fill(previous_step_code(secret))
    tab.page.get_by_role("button", name="Continue").click()
    tab.page.wait_for_load_state()
    tab.check("ops-overview")
    return person


def test_admin_invites_a_colleague_and_changes_a_role(tab: Tab):
    _admin(tab, "staff")
    page = tab.page
    colleague = f"colleague-{tab.viewport}@example.com"
    tab.goto("/ops/staff")
    expect(page.get_by_role("heading", level=1)).to_have_text("Staff")
    tab.check("staff")
    page.get_by_label("Email address").fill(colleague)
    page.get_by_label("Name").fill("New Colleague")
    page.locator("#invite-role").select_option("support_agent")
    page.get_by_role("button", name="Send invitation").click()
    page.wait_for_load_state()
    expect(page.locator("main")).to_contain_text(f"Invitation sent to {colleague}")
    row = page.get_by_role("row").filter(has_text=colleague)
    expect(row).to_contain_text("Invited")
    tab.check("staff-invited")
    row.get_by_label(re.compile("Role of New Colleague")).select_option("auditor")
    row.get_by_role("button", name="Change role").click()
    page.wait_for_load_state()
    expect(page.locator("main")).to_contain_text("New Colleague is now Auditor (read only)")
    tab.check("staff-role-changed")
    with tab.live.database() as session:
        assert session.scalars(sa.select(User.role).where(User.email == colleague)).one() \
            is Role.AUDITOR


def test_admin_creates_an_api_key_sees_it_once_and_revokes_it(tab: Tab):
    _admin(tab, "keys")
    page = tab.page
    name = f"call centre {tab.viewport}"
    tab.goto("/ops/api-keys")
    expect(page.get_by_role("heading", level=1)).to_have_text("API keys")
    tab.check("api-keys")
    page.get_by_label(re.compile("Name")).fill(name)
    page.get_by_role("checkbox", name=re.compile(r"^\s*read: ")).check()
    page.get_by_role("checkbox", name=re.compile(r"^\s*support: ")).check()
    page.get_by_label(re.compile("Rate limit")).fill("120")
    page.get_by_role("button", name="Create key").click()
    page.wait_for_load_state()
    secret = page.locator(".new-secret code").inner_text()
    assert re.fullmatch(r"hk_[0-9a-f]{12}_\S+", secret)
    tab.check("api-key-created")
    tab.goto("/ops/api-keys")
    expect(page.locator("main")).not_to_contain_text(secret)
    row = page.get_by_role("row").filter(has_text=name)
    expect(row).to_contain_text("120")
    row.get_by_role("button", name=re.compile("Revoke")).click()
    page.wait_for_load_state()
    expect(page.locator("main")).to_contain_text("is revoked")
    tab.check("api-key-revoked")
    with tab.live.database() as session:
        key = session.scalars(sa.select(ApiKey).where(ApiKey.name == name)).one()
        assert key.revoked_at is not None and key.rate_limit == 120
