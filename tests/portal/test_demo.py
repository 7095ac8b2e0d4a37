"""``herald demo`` as a newcomer runs it: a real process, a real port, the sign-in page."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from portal.demo.seed import read_sign_ins
from tests.peers.ports import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A running ``herald demo`` on an instance folder of its own (embedded SQLite)."""
    instance = tmp_path_factory.mktemp("demo-instance")
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "HUEY_URL", "SECRET_KEY", "HERALD_TEST_DATABASE_URL"}}
    env["HERALD_INSTANCE_PATH"] = str(instance)
    herald = Path(sys.executable).with_name("herald")
    process = subprocess.Popen([str(herald), "demo", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"herald demo exited early:\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"herald demo did not answer within 120 s:\n{process.stdout.read()}")
    yield base, instance, process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_demo_serves_the_sign_in_page(demo):
    base, _, _ = demo
    with urllib.request.urlopen(f"{base}/") as response:
        assert response.url.endswith("/sign-in")
        page = response.read().decode()
    assert "<h1>Sign in</h1>" in page
    with urllib.request.urlopen(f"{base}/static/vendor/htmx.min.js") as response:
        assert response.status == 200  # front-end files installed from npm are served


def test_demo_data_is_behind_it(demo):
    _, instance, _ = demo
    engine = sa.create_engine(f"sqlite:///{instance / 'herald.sqlite3'}")
    with engine.connect() as connection:
        customers = connection.scalar(sa.text("SELECT count(*) FROM customers"))
        languages = set(connection.scalars(sa.text("SELECT DISTINCT language FROM customers")))
        zones = set(connection.scalars(sa.text("SELECT DISTINCT time_zone FROM customers")))
        kinds = dict(connection.execute(sa.text(
            "SELECT kind, count(*) FROM invoices GROUP BY kind")).all())
        statuses = set(connection.scalars(sa.text("SELECT DISTINCT status FROM invoices")))
        categories = set(connection.scalars(sa.text(
            "SELECT DISTINCT vat_category FROM invoice_lines")))
    engine.dispose()
    assert customers == 200
    assert languages == {"en", "nl", "es"}
    assert len(zones) >= 5
    assert kinds["credit_note"] > 10 and 900 <= kinds["invoice"] + kinds["credit_note"] <= 1200
    assert {"paid", "issued", "partially_paid", "disputed"} <= statuses
    assert {"S", "AE", "E", "G", "Z"} <= categories


def test_a_demo_customer_signs_in_and_sees_invoices(demo):
    base, instance, _ = demo
    sign_in = next(s for s in read_sign_ins(instance) if s.role.startswith("customer"))
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    page = opener.open(f"{base}/sign-in").read().decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    body = urlencode({"csrf_token": token, "email": sign_in.email,
                      "password": sign_in.password}).encode()
    landing = opener.open(f"{base}/sign-in", data=body)
    assert landing.url.endswith("/invoices")
    assert re.search(r"INV-\d{4}-\d{6}", landing.read().decode())


def test_the_demo_run_goes_out_on_all_five_channels(demo):
    _, instance, _ = demo
    engine = sa.create_engine(f"sqlite:///{instance / 'herald.sqlite3'}")
    must_be_sent = {"email", "portal", "peppol"}
    deadline = time.monotonic() + 45
    try:
        while True:
            with engine.connect() as connection:
                counts = connection.execute(sa.text(
                    "SELECT channel, state, count(*) FROM deliveries GROUP BY channel, state"
                )).all()
            sent = {channel for channel, state, _ in counts if state == "sent"}
            if must_be_sent | {"web_push", "fcm"} <= sent or time.monotonic() > deadline:
                break
            time.sleep(1)
    finally:
        engine.dispose()
    assert {channel for channel, _, _ in counts} == must_be_sent | {"web_push", "fcm"}
    assert must_be_sent <= sent, counts
    failed = [(channel, n) for channel, state, n in counts if state == "failed"]
    assert not failed, counts
    # What was sent on push reached the local services and was kept there.
    if "web_push" in sent:
        assert list((instance / "demo-push").glob("*.json"))
    if "fcm" in sent:
        assert list((instance / "demo-app-push").glob("*.json"))


def test_demo_prints_the_sign_ins_and_stops_on_ctrl_c(demo):
    _, instance, process = demo
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert "Sign in as:" in output
    for sign_in in read_sign_ins(instance):
        assert sign_in.email in output
    assert process.returncode == 0
