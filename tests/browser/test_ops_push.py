"""The ops console in a real browser, a run that goes out by push as well as email.

Two customers of the run chose push (with email): one web push, one the mobile app
(FCM). An operator plans and starts the run in the console; the engine then runs as
a worker of this installation would, with the channels built from the live server's
settings (portal.channels.build_channels), against the test suite's real peers: the
SMTP server, the Web Push service that verifies the VAPID token and decrypts the
payload, and the local FCM v1 endpoint that checks the OAuth2 token and the
message's shape. The test reads what each peer received and finds the deliveries,
channel by channel, in the console's delivery log.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from distribution.channels.base import ChannelName
from distribution.channels.fcm import DATA_LINK
from distribution.deliveries import Message
from distribution.dispatcher import tick
from distribution.documents import DatabaseStore
from distribution.preferences import ALL_TYPES, set_preference
from distribution.recipients import add_address
from distribution.sending import Sender, SendingPolicy
from distribution.waves import Wave, WaveState
from portal.channels import build_channels, vapid_keys
from portal.db import get_database
from portal.models import Customer, Organisation, Role
from portal.preferences.push import subscribe
from portal.recipients_sync import sync_customer
from tests.browser.conftest import Tab
from tests.browser.test_ops_console import LIVE_TIMEOUT_MS, _customer, _smtp, _staff, plan_run
from tests.peers import smtp as smtp_peers
from tests.peers.fcm_server import FcmServer, fcm_server  # noqa: F401 - fixture
from tests.peers.webpush_service import (  # noqa: F401 - fixtures used by name
    PushService,
    push_service_factory_fixture,
    push_service_fixture,
)

smtp_peer = smtp_peers.smtp_peer

# firebase-admin 7.7 deprecates Message.token (Herald's addresses are registration tokens).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Message.token is deprecated:DeprecationWarning")

FCM_TOKEN = "cHVzaC1icm93c2VyLXRlc3Q:APA91bHerald-browser-test-token_{viewport}"


@pytest.fixture
def push_installation(live_server, smtp_peer, push_service, fcm_server, tmp_path,  # noqa: F811
                      monkeypatch):
    """The live server configured as a deployment with email, web push and app push, each
    pointed at its local peer (restored after the test)."""
    account = tmp_path / "fcm-service-account.json"
    account.write_text(json.dumps(fcm_server.service_account_info()), encoding="utf-8")
    settings = dataclasses.replace(
        live_server.app.config["HERALD"], smtp=_smtp(smtp_peer),
        vapid_subject="mailto:ops@herald.test", web_push_allow_http=True,
        fcm_service_account_file=account, fcm_api_url=fcm_server.url)
    monkeypatch.setitem(live_server.app.config, "HERALD", settings)
    return settings


def _choose_push(live_server, number: str, channel: ChannelName, address: str) -> None:
    """The customer chose ``channel`` and email for every message, on a device of theirs."""
    with live_server.database() as session:
        customer = session.scalars(sa.select(Customer).where(Customer.number == number)).one()
        recipient = sync_customer(session, customer, actor="browser-tests")
        if channel is ChannelName.WEB_PUSH:
            subscribe(session, recipient, json.loads(address), "Firefox on a laptop",
                      actor="browser-tests")
        else:
            add_address(session, recipient, channel, address, verified=True, label="Pixel 8",
                        actor="browser-tests")
        set_preference(session, recipient, ALL_TYPES, [channel, ChannelName.EMAIL])


def _run_engine(live_server, settings, run_id: int) -> int:
    """Dispatcher ticks and the sends they release, with the installation's own channels,
    until the run's waves are done; how many deliveries were sent.

    It runs in a thread of its own, as in a worker process: firebase-admin closes its
    HTTP client with asyncio.run(), which Playwright's event loop forbids in this one.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="worker") as worker:
        return worker.submit(_engine, live_server, settings, run_id).result()


def _engine(live_server, settings, run_id: int) -> int:
    make_session = get_database(live_server.app).sessionmaker
    channels = build_channels(settings)
    sender = Sender(make_session, channels, DatabaseStore(), SendingPolicy(max_attempts=1))
    sent = 0
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            released: list[int] = []
            tick(make_session, released.append)  # also marks a wave with nothing left done
            if released:
                sender.send_batch(released)
                sent += len(released)
            with make_session() as session:
                states = set(session.scalars(sa.select(Wave.state).where(Wave.run_id == run_id)))
            if states == {WaveState.DONE}:
                return sent
            time.sleep(0.3)  # the token bucket fills over a second or two
    finally:
        channels[ChannelName.FCM].close()  # frees the Firebase app's name for the next test
    raise AssertionError(f"the run is not done after 20 s ({sent} deliveries sent)")


def _link_of(live_server, invoice_number: str) -> str:
    """The "review & pay" link of the run's message about the invoice."""
    with live_server.database() as session:
        return session.scalars(sa.select(Message.link).where(
            Message.subject_key.contains(invoice_number))).one()


def test_operator_runs_a_wave_that_goes_out_by_push_and_email(
        tab: Tab, live_server, smtp_peer, push_service: PushService,
        fcm_server: FcmServer, push_installation):  # noqa: F811
    issued = date(2024, 9, 1) if tab.viewport == "desktop" else date(2024, 9, 2)
    web_number, app_number = f"webpush-{tab.viewport}", f"apppush-{tab.viewport}"
    [web_invoice] = _customer(live_server, web_number, issued, 1)
    [app_invoice] = _customer(live_server, app_number, issued, 1)
    subscription = push_service.subscription(
        f"browser-{tab.viewport}",
        application_server_key=vapid_keys(push_installation).public_key_b64url)
    _choose_push(live_server, web_number, ChannelName.WEB_PUSH, json.dumps(subscription))
    token = FCM_TOKEN.format(viewport=tab.viewport)
    _choose_push(live_server, app_number, ChannelName.FCM, token)

    page = tab.page
    tab.sign_in(_staff(live_server, Role.BILLING_OPERATOR, f"ops-push-{tab.viewport}@example.com"))
    tab.check("ops-overview")  # where staff land
    tab.goto("/ops/runs/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("Plan a run")
    tab.check("new-run")
    plan_run(page, f"September push run ({tab.viewport})", issued)
    per_channel = page.locator("#planner").get_by_role("table", name="Deliveries per channel")
    for label, count in (("Email", "2"), ("Web push", "1"), ("App push", "1")):
        expect(per_channel.get_by_role("row").filter(
            has=page.get_by_role("cell", name=label, exact=True))).to_contain_text(count)
    tab.check("new-run-preview")
    page.get_by_role("button", name="Create run").click()
    expect(page.get_by_text(re.compile(r"Run created with 2 documents"))).to_be_visible()
    tab.check("run-created")

    page.get_by_role("button", name="Start").click()
    live = page.locator("#live")
    expect(live.get_by_text(re.compile(r"0 of 4 deliveries done"))).to_be_visible()
    tab.check("run-started")
    run_id = int(re.fullmatch(r"/ops/runs/(\d+)", tab.path()).group(1))
    assert _run_engine(live_server, push_installation, run_id) == 4
    # Left alone, the live view shows the run going out and finishing.
    expect(live.get_by_text("4 of 4 deliveries done")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(live.locator("article.wave .state")).to_have_text("Done")
    tab.check("run-finished")

    # The push service verified the VAPID token and decrypted what Herald sent.
    with live_server.database() as session:
        seller = session.get(Organisation, live_server.seeded.organisation_id).display_name
    assert push_service.rejected == []
    [push] = push_service.received
    assert push.claims["aud"] == push_service.origin
    assert push.claims["sub"] == "mailto:ops@herald.test"
    assert push.vapid_key == vapid_keys(push_installation).public_key_b64url
    web_link = _link_of(live_server, web_invoice)
    assert re.fullmatch(re.escape(live_server.url) + r"/pay/t/[\w-]{20,}", web_link)
    payload = push.json()
    assert payload["title"] == f"Your invoice {web_invoice} from {seller}"
    assert f"Your invoice {web_invoice} of €120.15 is ready." in payload["body"]
    assert payload["url"] == web_link
    assert payload["data"]["number"] == web_invoice

    # The FCM endpoint took the OAuth2 token and a well-formed message for the device.
    assert fcm_server.rejected == []
    [received] = fcm_server.received
    assert received.headers["authorization"].startswith("Bearer ")
    app_link = _link_of(live_server, app_invoice)
    assert app_link.startswith(live_server.url + "/pay/t/") and app_link != web_link
    assert received.message["token"] == token
    notification = received.message["notification"]
    assert notification["title"] == f"Your invoice {app_invoice} from {seller}"
    assert f"Your invoice {app_invoice} of €120.15 is ready." in notification["body"]
    assert received.message["data"][DATA_LINK] == app_link
    assert received.message["data"]["number"] == app_invoice

    # Email went to both customers, each with their own invoice.
    assert sorted(m.rcpt_tos[0] for m in smtp_peer.messages) == sorted(
        [f"{web_number}@example.com", f"{app_number}@example.com"])

    # The delivery log shows each invoice sent on each channel the customer chose.
    tab.goto("/ops/log")
    expect(page.get_by_role("heading", level=1)).to_have_text("Delivery log")
    tab.check("log")
    for invoice_number, push_label in ((web_invoice, "Web push"), (app_invoice, "App push")):
        page.get_by_label("Invoice number").fill(invoice_number)
        page.get_by_role("button", name="Search").click()
        rows = page.get_by_role("table").get_by_role("row")
        for label in (push_label, "Email"):
            expect(rows.filter(has=page.get_by_role("cell", name=label, exact=True))
                   ).to_contain_text("Sent")
        tab.check(f"log-{push_label}")

    # The link in the app notification opens that invoice, ready to pay.
    tab.goto(app_link.removeprefix(live_server.url))
    expect(page.locator("main")).to_contain_text(app_invoice)
    tab.check("pay-link-from-push")
