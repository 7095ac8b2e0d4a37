"""The portal half of the scale test: signed-in customers under load, and queries per page.

Customers sign in through the real sign-in form (in-process, from 127.0.0.1 with
wrk's user agent, the per-address sign-in limit raised for it); their session cookies then
drive wrk against gunicorn on loopback, one connection per user. wrk's Lua script gives
each request the next customer's cookie and page, waits a think time between a user's
requests (a person reads the page before clicking on; without it 50 connections would
be 50 scripts hammering the server, not 50 users), and prints p50 and p95 itself
(wrk's own report has no 95th percentile).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import sqlalchemy as sa

from portal import create_app
from portal.auth.passwords import hash_password
from portal.db import db_session
from portal.models import Customer, DocumentKind, Invoice, Role, User

USER_AGENT = "herald-scale-test"
WRK_SCRIPT = """
local cookies = {%(cookies)s}
local paths = {%(paths)s}
local n = 0
request = function()
  n = n + 1
  local k = (n %% #paths) + 1
  return wrk.format("GET", paths[k], {["Cookie"] = cookies[k], ["User-Agent"] = "%(agent)s"})
end
delay = function()
  -- a user reads the page before the next click: %(think)d ms on average
  return math.random(%(think)d / 2, %(think)d * 3 / 2)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%.2f %%.2f %%.2f\\n", summary.requests,
    e.status + e.connect + e.read + e.write + e.timeout, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, summary.duration / 1e6))
end
"""


@dataclass(frozen=True)
class SignedIn:
    """One customer's session cookie and the pages they open."""

    cookie: str
    list_path: str
    detail_path: str


def sign_ins(env: dict[str, str], users: int) -> list[SignedIn]:
    """``users`` customers spread over the data, each signed in once through the form."""
    app = create_app({k: v for k, v in env.items() if k in {
        "DATABASE_URL", "HERALD_INSTANCE_PATH", "SECRET_KEY", "HERALD_PUBLIC_URL",
        "SIGN_IN_LIMIT_PER_ADDRESS"}})
    password = secrets.token_urlsafe(12)
    with app.app_context():
        session = db_session()
        try:
            total = session.scalar(sa.select(sa.func.count()).select_from(Customer))
            step = max(total // users, 1)
            customers = session.scalars(sa.select(Customer.id).order_by(Customer.id)
                                        .offset(step // 2)).all()[::step][:users]
            hashed = hash_password(password)
            numbers = {}
            for customer_id in customers:
                session.add(User(email=f"scale-{customer_id}@example.com", name="Scale",
                                 role=Role.CUSTOMER, customer_id=customer_id,
                                 password_hash=hashed, session_token=secrets.token_hex(16)))
                numbers[customer_id] = session.scalar(sa.select(Invoice.number).where(
                    Invoice.customer_id == customer_id, Invoice.kind == DocumentKind.INVOICE)
                    .order_by(Invoice.issue_date.desc()).limit(1))
            session.commit()
        finally:
            session.close()  # nothing may hold a transaction open while gunicorn serves
    # Requests outside that app context: inside it, flask-login's user (kept on ``g``)
    # would carry over from one customer's sign-in to the next.
    signed_in = []
    for customer_id in customers:
        client = app.test_client()
        # Where wrk's requests come from and what they say they are: flask-login's strong
        # session protection ends a session that changes address or user agent.
        client.environ_base.update(REMOTE_ADDR="127.0.0.1", HTTP_USER_AGENT=USER_AGENT)
        page = client.get("/sign-in")
        token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data)
        if token is None:
            raise RuntimeError(f"no sign-in form for customer {customer_id} "
                               f"({page.status_code}): {page.data[:300]!r}")
        response = client.post("/sign-in", data={
            "csrf_token": token.group(1).decode(),
            "email": f"scale-{customer_id}@example.com", "password": password})
        if response.status_code != 302:
            raise RuntimeError(f"customer {customer_id} could not sign in "
                               f"({response.status_code})")
        signed_in.append(SignedIn(f"session={client.get_cookie('session').value}",
                                  "/invoices", f"/invoices/{numbers[customer_id]}"))
    _print_queries_per_page(app, signed_in[0])
    return signed_in


def _print_queries_per_page(app, customer: SignedIn) -> None:
    """The SQL statements the list and the detail page run, counted on the engine."""
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        client = app.test_client()
        client.environ_base.update(REMOTE_ADDR="127.0.0.1", HTTP_USER_AGENT=USER_AGENT)
        client.set_cookie("session", customer.cookie.removeprefix("session="))
        for name, path in (("list", customer.list_path), ("detail", customer.detail_path)):
            statements.clear()
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            print(f"BENCH scale_portal_{name}_queries {len(statements)} queries")
            for statement in statements:
                print(f"#   {' '.join(statement.split())[:110]}", file=sys.stderr)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)


def load_portal(env: dict[str, str], customers: list[SignedIn], *, web_workers: int,
                seconds: int, think_ms: int) -> None:
    """gunicorn on a free port, checked page by page, then wrk on the list and detail pages."""
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--workers", str(web_workers),
         "--bind", f"127.0.0.1:{port}", "--timeout", "120", "--log-level", "warning",
         "portal:create_app()"],
        env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/healthz")
        for customer in customers:  # every cookie opens both pages: no redirect to sign-in
            for path in (customer.list_path, customer.detail_path):
                response = requests.get(base + path, headers={"Cookie": customer.cookie,
                                                                 "User-Agent": USER_AGENT},
                                        allow_redirects=False, timeout=30)
                assert response.status_code == 200, (path, response.status_code)
        for name in ("list", "detail"):
            paths = [getattr(c, f"{name}_path") for c in customers]
            _wrk(base, name, [c.cookie for c in customers], paths, len(customers), seconds,
                 think_ms)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


def _wrk(base: str, name: str, cookies: list[str], paths: list[str], connections: int,
         seconds: int, think_ms: int) -> None:
    quoted = ", ".join(f'"{c}"' for c in cookies), ", ".join(f'"{p}"' for p in paths)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"cookies": quoted[0], "paths": quoted[1],
                                    "agent": USER_AGENT, "think": think_ms})
    try:
        output = subprocess.run(
            ["wrk", "--threads", "2", "--connections", str(connections), "--duration",
             f"{seconds}s", "--timeout", "10s", "--script", script.name, base],
            capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    requests_done, errors, p50, p95, duration = re.search(
        r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", output).groups()
    print(f"BENCH scale_portal_{name}_p50 {p50} ms")
    print(f"BENCH scale_portal_{name}_p95 {p95} ms")
    print(f"BENCH scale_portal_{name}_rate {int(requests_done) / float(duration):.0f} requests/s")
    print(f"# {name}: {requests_done} requests, {errors} errors, {connections} users",
          file=sys.stderr)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:  # not listening yet, or workers still booting
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the portal did not answer at {url}")
