"""A billing operator rewords a message in a real browser: live preview, save, history, reset."""

from __future__ import annotations

import re

import sqlalchemy as sa
from playwright.sync_api import expect

from distribution.template_store import TemplateVersion
from portal.models import Role
from tests.browser.conftest import Tab
from tests.browser.seed import PASSWORD, Person
from tests.factories import make_user


def test_operator_edits_a_template_with_the_live_preview(tab: Tab, live_server):
    email = f"ops-{tab.viewport}@example.com"
    with live_server.database() as session:
        make_user(session, email=email, role=Role.BILLING_OPERATOR,
                  password=PASSWORD)
    page = tab.page
    tab.sign_in(Person(email=email, customer_number="", language="en", invoices=()))
    tab.check("ops-overview")  # where staff land
    tab.goto("/ops/templates")
    expect(page.get_by_role("heading", level=1)).to_have_text("Message templates")
    tab.check("templates")

    page.get_by_role("link", name=re.compile(r"Notice, Email subject, English")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Notice: Email subject (English)")
    tab.check("edit")

    # Typing refreshes the preview (htmx), filled in with a real invoice, escaped.
    text = page.get_by_label("Text", exact=True)
    text.fill("News from {{ seller_name }} for {{ customer_name }} <" + tab.viewport + ">")
    preview = page.locator("#template-preview")
    expect(preview).to_contain_text("News from Testing Telecom for")
    expect(preview).to_contain_text(f"<{tab.viewport}>")
    text.fill("Pay at https://elsewhere.example {{ link }}")
    expect(preview.get_by_role("alert")).to_contain_text("looks like a web or mail address")
    tab.check("edit-refused")

    text.fill("News from {{ seller_name }} (" + tab.viewport + ")")
    expect(preview).to_contain_text(f"News from Testing Telecom ({tab.viewport})")
    page.get_by_label("Note for the history (optional)").fill("shorter")
    page.get_by_role("button", name="Save as new version").click()
    expect(page.get_by_text(re.compile(r"Version \d+ saved"))).to_be_visible()
    tab.check("saved")

    page.get_by_role("button", name="Reset to built-in").click()
    expect(page.get_by_text(re.compile(r"Back to the built-in text"))).to_be_visible()
    tab.check("reset")

    with live_server.database() as session:
        ours = session.scalars(sa.select(TemplateVersion).where(
            TemplateVersion.created_by.contains(email)).order_by(TemplateVersion.id)).all()
        assert [(v.source, v.note) for v in ours] == [
            (f"News from {{{{ seller_name }}}} ({tab.viewport})", "shorter"),
            (None, "reset to the built-in text")]
