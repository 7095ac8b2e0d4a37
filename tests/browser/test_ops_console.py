"""The ops console in a real browser: plan and start a run and watch its live view move, pause
and resume a running wave, find a delivery in the log, read the invoice's trail and export the
log as CSV, retry a failure, look a caller up, and the admins' settings page with a real test
email. Each page is checked with axe-core on a desktop
and a (dark) phone, with screenshots under test-artifacts/browser/.

The live server runs no dispatcher or worker; where a test needs the engine it runs one
dispatcher tick and one send batch in the test, against a real SMTP peer (aiosmtpd), so the
page sees the same changes a running Herald would make.
"""

from __future__ import annotations

import dataclasses
import re
import time
from datetime import date, timedelta
from pathlib import Path

import pyotp
import sqlalchemy as sa
from playwright.sync_api import expect

from distribution.channels.base import ChannelName
from distribution.channels.email import EmailChannel
from distribution.channels.email_settings import SmtpSettings
from distribution.channels.portal_inbox import PortalInboxChannel
from distribution.deliveries import Delivery, DeliveryState, Message
from distribution.dispatcher import tick
from distribution.documents import DatabaseStore
from distribution.runs import WaveOptions, start_wave
from distribution.sending import Sender, SendingPolicy
from distribution.waves import Wave, WaveState
from portal.db import get_database
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.models import Invoice, Organisation, Role, User
from portal.models.base import utcnow
from portal.rendering import render_invoice_pdf
from portal.runs import RunSelection, create_document_run
from tests.browser.conftest import Tab
from tests.browser.seed import PASSWORD, Person
from tests.factories import invoice_json, make_customer, make_user
from tests.peers import smtp as smtp_peers
from tests.peers.smtp import SmtpPeer
from tests.totp_codes import previous_step_code

smtp_peer = smtp_peers.smtp_peer

LIVE_TIMEOUT_MS = 15_000  # the live view polls every 5 s


def _staff(live_server, role: Role, email: str) -> Person:
    with live_server.database() as session:
        user = make_user(session, email=email, role=role, password=PASSWORD)
        if role is Role.ADMIN:
            user.totp_secret = pyotp.random_base32()
            user.totp_enabled_at = utcnow()
    return Person(email=email, customer_number="", language="en", invoices=())


def _sign_in_admin(tab: Tab, person: Person) -> None:
    tab.sign_in(person)
    expect(tab.page.get_by_role("heading", level=1)).to_have_text("Enter your code")
    tab.check("sign-in-code")
    with tab.live.database() as session:
        secret = session.scalars(sa.select(User.totp_secret).where(
            User.email == person.email)).one()
    tab.page.get_by_label("Code").fill(previous_step_code(secret))
    tab.page.get_by_role("button", name="Continue").click()
    tab.page.wait_for_load_state()
    tab.check("ops-overview")  # where staff land


def _customer(live_server, number: str, issued: date, count: int) -> list[str]:
    """A customer of the test's own with ``count`` invoices issued on ``issued`` (a date no
    other test uses, so a run over that day covers exactly these), PDFs rendered."""
    numbers = [f"INV-{number.upper()}-{n}" for n in range(1, count + 1)]
    with live_server.database() as session:
        org = session.get(Organisation, live_server.seeded.organisation_id)
        customer = make_customer(session, org, number, name=f"Customer {number}")
        documents = [document_from_mapping(
            invoice_json(n, number, issue_date=issued.isoformat(),
                         due_date=(issued + timedelta(days=30)).isoformat()),
            Locator("browser tests", n), source="json") for n in numbers]
        store = DatabaseStore()
        import_documents(session, documents, file="browser tests", store=store)
        for invoice in session.scalars(sa.select(Invoice).where(
                Invoice.customer_id == customer.id)):
            render_invoice_pdf(session, invoice, store, public_url=live_server.url,
                               actor="browser-tests")
    return numbers


def _smtp(peer: SmtpPeer) -> SmtpSettings:
    return SmtpSettings(host=peer.host, port=peer.port, from_address="billing@herald.test",
                        message_id_domain="herald.test", timeout=5)


def _engine_step(live_server, peer: SmtpPeer) -> int:
    """Dispatcher ticks and the sends they release, as Herald's dispatcher and a worker do,
    until no running wave has a delivery waiting (the token bucket fills over a second or
    two); how many deliveries were sent."""
    make_session = get_database(live_server.app).sessionmaker
    sender = Sender(make_session, {ChannelName.EMAIL: EmailChannel(_smtp(peer)),
                                   ChannelName.PORTAL: PortalInboxChannel()},
                    DatabaseStore(), SendingPolicy(max_attempts=1))
    sent = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        released: list[int] = []
        tick(make_session, released.append)
        if released:
            sender.send_batch(released)
            sent += len(released)
        with make_session() as session:
            waiting = session.scalar(sa.select(sa.func.count(Delivery.id)).join(
                Wave, Wave.id == Delivery.wave_id).where(
                Wave.state == WaveState.RUNNING,
                Delivery.state.in_((DeliveryState.PENDING, DeliveryState.RELEASED)),
                Delivery.next_attempt_at.is_(None)))
        if not waiting:
            return sent
        time.sleep(0.3)
    raise AssertionError(f"deliveries still waiting after 20 s ({sent} sent)")


def _sent_run(live_server, issued: date) -> int:
    """A started run over the day's invoices (created as the run form does); its run id."""
    with live_server.database() as session:
        summary = create_document_run(
            session, RunSelection(issued_from=issued, issued_to=issued),
            WaveOptions(rate_per_minute=600, window_start_hour=0, window_end_hour=24,
                        weekdays=tuple(range(7))),
            name=f"run {issued}", public_url=live_server.url, created_by="browser-tests")
        run_id = summary.run.id
        wave_id = session.scalars(sa.select(Wave.id).where(Wave.run_id == run_id)).first()
        start_wave(session, wave_id, actor="browser-tests")
    return run_id


def plan_run(page, name: str, issued, rate_per_minute: str = "600") -> None:
    """Fill "Plan a run" for the documents issued on ``issued``, any hour and day; preview."""
    page.get_by_label("Name").fill(name)
    page.get_by_label("Issued from").fill(issued.isoformat())
    page.get_by_label("Issued up to").fill(issued.isoformat())
    page.get_by_label("Send from (hour)").fill("0")
    page.get_by_label("Send until (hour)").fill("24")
    page.get_by_label("Also on Saturday and Sunday").check()
    page.get_by_label("Releases per minute").fill(rate_per_minute)
    page.get_by_role("button", name="Preview").click()

def test_operator_plans_a_run_starts_it_and_watches_it_move(tab: Tab, live_server, smtp_peer):
    issued = date(2024, 3, 1) if tab.viewport == "desktop" else date(2024, 3, 2)
    numbers = _customer(live_server, f"runs-{tab.viewport}", issued, 3)
    page = tab.page
    tab.sign_in(_staff(live_server, Role.BILLING_OPERATOR, f"runs-{tab.viewport}@example.com"))
    tab.check("ops-overview")  # where staff land
    tab.goto("/ops/runs")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    tab.check("runs")
    tab.goto("/ops/runs/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("Plan a run")
    tab.check("new-run")
    plan_run(page, f"March run ({tab.viewport})", issued)
    preview = page.locator("#planner")
    expect(preview).to_contain_text("3", timeout=LIVE_TIMEOUT_MS)
    expect(preview.get_by_text(re.compile(r"Email", re.I)).first).to_be_visible()
    tab.check("new-run-preview")
    page.get_by_role("button", name="Create run").click()
    expect(page.get_by_text(re.compile(r"Run created with 3 documents"))).to_be_visible()
    tab.check("run-created")

    page.get_by_role("button", name="Start").click()
    live = page.locator("#live")
    expect(live.get_by_text(re.compile(r"0 of \d+ deliveries done"))).to_be_visible()
    tab.check("run-started")
    # A dispatcher tick and a worker's batch send; the page, left alone, shows the change.
    assert _engine_step(live_server, smtp_peer) > 0
    expect(live.get_by_text(re.compile(r"\b[1-9]\d* of \d+ deliveries done"))).to_be_visible(
        timeout=LIVE_TIMEOUT_MS)
    tab.check("run-done")
    assert {m.rcpt_tos[0] for m in smtp_peer.messages} == {f"runs-{tab.viewport}@example.com"}
    assert len(smtp_peer.messages) == len(numbers)


def test_support_finds_a_delivery_in_the_log_and_reads_the_trail(tab: Tab, live_server,
                                                                  smtp_peer):
    issued = date(2024, 4, 1) if tab.viewport == "desktop" else date(2024, 4, 2)
    number = f"log-{tab.viewport}"
    [invoice_number] = _customer(live_server, number, issued, 1)
    _sent_run(live_server, issued)
    _engine_step(live_server, smtp_peer)
    page = tab.page
    tab.sign_in(_staff(live_server, Role.SUPPORT_AGENT, f"agent-log-{tab.viewport}@example.com"))
    tab.check("ops-overview")  # where staff land
    tab.goto("/ops/log")
    expect(page.get_by_role("heading", level=1)).to_have_text("Delivery log")
    tab.check("log")
    page.get_by_label("Invoice number").fill(invoice_number)
    page.get_by_role("button", name="Search").click()
    results = page.get_by_role("table")
    expect(results).to_contain_text(f"{number}@example.com")
    expect(results).to_contain_text("Sent")
    tab.check("log-results")
    page.get_by_role("link", name=re.compile(rf"The full trail of {invoice_number}")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(invoice_number)
    expect(page.locator("main")).to_contain_text("delivery.sent")
    tab.check("trail")


def test_operator_retries_a_failed_delivery(tab: Tab, live_server, smtp_peer):
    issued = date(2024, 5, 1) if tab.viewport == "desktop" else date(2024, 5, 2)
    number = f"fail-{tab.viewport}"
    address = f"{number}@example.com"
    [invoice_number] = _customer(live_server, number, issued, 1)
    _sent_run(live_server, issued)
    smtp_peer.fail_next(451, "4.3.0 try again later", at="DATA")  # gives up: one attempt
    _engine_step(live_server, smtp_peer)
    page = tab.page
    tab.sign_in(_staff(live_server, Role.BILLING_OPERATOR, f"ops-fail-{tab.viewport}@example.com"))
    tab.check("ops-overview")  # where staff land
    tab.goto("/ops/failures")
    expect(page.get_by_role("heading", level=1)).to_have_text("Failures")
    row = page.get_by_role("row").filter(has_text=invoice_number)
    expect(row).to_contain_text("451")
    tab.check("failures")
    row.get_by_role("link", name=re.compile(r"Timeline of delivery")).click()
    expect(page.locator("main")).to_contain_text("4.3.0 try again later")
    tab.check("delivery-timeline")
    tab.goto("/ops/failures")
    smtp_peer.heal()
    page.get_by_role("row").filter(has_text=invoice_number).get_by_role(
        "button", name=re.compile(r"Retry")).click()
    page.wait_for_load_state()
    expect(page.get_by_text("The delivery goes out again.")).to_be_visible()
    tab.check("retried")
    with live_server.database() as session:
        delivery = session.scalars(sa.select(Delivery).join(Message).where(
            Message.subject_key.contains(invoice_number),
            Delivery.channel == ChannelName.EMAIL)).one()
        assert delivery.state is DeliveryState.PENDING
    _engine_step(live_server, smtp_peer)
    assert address in {m.rcpt_tos[0] for m in smtp_peer.messages}


def test_support_agent_looks_up_a_caller(tab: Tab, live_server, smtp_peer):
    issued = date(2024, 6, 1) if tab.viewport == "desktop" else date(2024, 6, 2)
    number = f"caller-{tab.viewport}"
    [invoice_number] = _customer(live_server, number, issued, 1)
    _sent_run(live_server, issued)
    _engine_step(live_server, smtp_peer)
    page = tab.page
    tab.sign_in(_staff(live_server, Role.SUPPORT_AGENT, f"agent-{tab.viewport}@example.com"))
    tab.check("ops-overview")  # where staff land
    tab.goto("/ops/customers")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    tab.check("customer-lookup")
    query = page.get_by_label(re.compile(r"Email address, phone number"))
    query.fill(invoice_number)
    query.press("Enter")  # one match opens the customer's page at once
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Customer {number}")
    main = page.locator("main")
    expect(main).to_contain_text(invoice_number)
    expect(main).to_contain_text(f"{number}@example.com")
    tab.check("customer")


def test_admin_edits_settings_and_sends_a_test_email(tab: Tab, live_server, smtp_peer):
    app = live_server.app
    saved = app.config["HERALD"]
    app.config["HERALD"] = dataclasses.replace(saved, smtp=dataclasses.replace(
        _smtp(smtp_peer), username=None, password=None))
    try:
        _settings_flow(tab, live_server, smtp_peer)
    finally:
        app.config["HERALD"] = saved


def _settings_flow(tab: Tab, live_server, smtp_peer) -> None:
    page = tab.page
    _sign_in_admin(tab, _staff(live_server, Role.ADMIN, f"admin-{tab.viewport}@example.com"))
    page.get_by_role("link", name="Settings", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Settings")
    tab.check("settings")

    # A mistyped IBAN is refused with a message naming the field; nothing is stored.
    page.get_by_label("IBAN").fill("BE68 5390 0754 7035")
    page.get_by_role("button", name="Save seller details").click()
    expect(page.get_by_text("IBAN: the check digits do not match")).to_be_visible()
    expect(page.get_by_label("IBAN")).to_have_attribute("aria-invalid", "true")
    tab.check("settings-iban-refused")
    page.get_by_label("IBAN").fill("BE68 5390 0754 7034")
    page.get_by_label("Website").fill(f"https://{tab.viewport}.example")
    page.get_by_role("button", name="Save seller details").click()
    expect(page.get_by_text("Seller details saved.")).to_be_visible()
    tab.check("settings-saved")
    with live_server.database() as session:
        org = session.get(Organisation, live_server.seeded.organisation_id)
        assert org.website == f"https://{tab.viewport}.example"
        assert org.iban == "BE68539007547034"

    # The email channel's test: sent through the real SMTP peer, the result shown in place.
    target = f"it-{tab.viewport}@example.com"
    email_test = page.locator("form.channel-test").filter(
        has=page.get_by_label("Email address to send the test to"))
    email_test.get_by_label("Email address to send the test to").fill(target)
    page.evaluate("() => { window.sameDocument = true; }")
    email_test.get_by_role("button", name=re.compile("Send test")).click()
    expect(page.locator("#test-result-email")).to_contain_text(f"Test sent to {target}.")
    tab.check("settings-test-sent")
    assert target in {m.rcpt_tos[0] for m in smtp_peer.messages}
    assert page.evaluate("() => window.sameDocument === true")  # htmx swapped it in place


def test_operator_pauses_and_resumes_a_running_wave(tab: Tab, live_server, smtp_peer):
    issued = date(2024, 7, 1) if tab.viewport == "desktop" else date(2024, 7, 2)
    number = f"pause-{tab.viewport}"
    numbers = _customer(live_server, number, issued, 2)
    run_id = _sent_run(live_server, issued)
    page = tab.page
    tab.sign_in(_staff(live_server, Role.BILLING_OPERATOR, f"ops-pause-{tab.viewport}@example.com"))
    tab.check("ops-overview")  # where staff land
    tab.goto(f"/ops/runs/{run_id}")
    live = page.locator("#live")
    expect(live.locator("article.wave .state")).to_have_text("Running")
    live.get_by_label("Reason for pausing").fill("complaint spike on the phones")
    live.get_by_role("button", name="Pause").click()
    page.wait_for_load_state()
    expect(live.locator("article.wave .state")).to_have_text("Paused")
    expect(live).to_contain_text("Paused: complaint spike on the phones")
    tab.check("wave-paused")
    assert _engine_step(live_server, smtp_peer) == 0  # a paused wave releases nothing
    assert smtp_peer.messages == []
    live.get_by_role("button", name="Resume").click()
    page.wait_for_load_state()
    expect(live.locator("article.wave .state")).to_have_text("Running")
    expect(live.get_by_text(re.compile(r"0 of \d+ deliveries done"))).to_be_visible()
    assert _engine_step(live_server, smtp_peer) > 0
    # Left alone, the live view shows the wave going out and finishing.
    expect(live.get_by_text(re.compile(r"(\d+) of \1 deliveries done"))).to_be_visible(
        timeout=LIVE_TIMEOUT_MS)
    tab.check("wave-resumed")
    assert len(smtp_peer.messages) == len(numbers)


def test_support_exports_the_delivery_log_as_csv(tab: Tab, live_server, smtp_peer):
    issued = date(2024, 8, 1) if tab.viewport == "desktop" else date(2024, 8, 2)
    number = f"csv-{tab.viewport}"
    [invoice_number] = _customer(live_server, number, issued, 1)
    _sent_run(live_server, issued)
    _engine_step(live_server, smtp_peer)
    page = tab.page
    tab.sign_in(_staff(live_server, Role.SUPPORT_AGENT, f"agent-csv-{tab.viewport}@example.com"))
    tab.check("ops-overview")  # where staff land
    tab.goto("/ops/log")
    tab.check("log-before-export")
    page.get_by_label("Invoice number").fill(invoice_number)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("table")).to_contain_text(f"{number}@example.com")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export all results as CSV").click()
    exported = download.value
    assert exported.suggested_filename.endswith(".csv")
    text = Path(exported.path()).read_text(encoding="utf-8-sig")
    header, *rows = text.splitlines()
    assert "channel" in header.lower() and rows
    assert all(invoice_number in row for row in rows)
    assert any(f"{number}@example.com" in row and "sent" in row.lower() for row in rows)
    tab.check("log-exported")
