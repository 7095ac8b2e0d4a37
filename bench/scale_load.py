"""The portal half of the scale test: signed-in customers under load, and queries per page.

Customers sign in through the real sign-in form (in-process, from 127.0.0.1 with
wrk's user agent, the per-address sign-in limit raised for it); their session cookies then
drive wrk against gunicorn on loopback, one connection per user. wrk's Lua script gives
each request the next customer's cookie and page, waits a think time between a user's
requests (a person reads the page before clicking on; without it 50 connections would
be 50 scripts hammering the server, not 50 users), and prints p50 and p95 itself
(wrk's own report has no 95th percentile). The CPU the server spent per request is
printed too: gunicorn's workers and, on PostgreSQL, the database backends serving them
(their connections carry an ``application_name`` of their own), so the figure holds on
a machine busy with other work, where latency does not.

Run alone against a database that already holds data (the scale test's schema, or
the demo's SQLite file); the customers' sign-ins it adds are reused on the next run::

    .venv/bin/python bench/scale_load.py --url 'postgresql+psycopg://...?options=-csearch_path%3Dmy_schema'
"""

from __future__ import annotations

import argparse
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from send_throughput import own_backends, process_cpu  # bench/ is on sys.path

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
                email = f"scale-{customer_id}@example.com"
                user = session.scalar(sa.select(User).where(User.email == email))
                if user is None:  # an earlier run against the same data made it already
                    session.add(User(email=email, name="Scale", role=Role.CUSTOMER,
                                     customer_id=customer_id, password_hash=hashed,
                                     session_token=secrets.token_hex(16)))
                else:
                    user.password_hash = hashed
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
    """The SQL statements the list and the detail page run, counted on the engine.

    Counted on a visit after the first, as the load repeats them; the first's count is
    printed as a comment.
    """
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        client = app.test_client()
        client.environ_base.update(REMOTE_ADDR="127.0.0.1", HTTP_USER_AGENT=USER_AGENT)
        client.set_cookie("session", customer.cookie.removeprefix("session="))
        for name, path in (("list", customer.list_path), ("detail", customer.detail_path)):
            # The first visit also marks the customer's new notifications delivered (the
            # list) or their messages about the invoice viewed (the page), with an event
            # each; every later visit, which is what the load repeats, only reads.
            for visit in ("first", "again"):
                statements.clear()
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)
                if visit == "first":
                    print(f"# {name}, first visit: {len(statements)} queries", file=sys.stderr)
            print(f"BENCH scale_portal_{name}_queries {len(statements)} queries")
            for statement in statements:
                print(f"#   {' '.join(statement.split())[:110]}", file=sys.stderr)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)


def load_portal(env: dict[str, str], customers: list[SignedIn], *, web_workers: int,
                seconds: int, think_ms: int, threads: int = 4) -> None:
    """gunicorn on a free port, checked page by page, then wrk on the list and detail pages.

    gunicorn runs with Herald's production settings (portal/gunicorn_config.py,
    threaded workers) and ``web_workers`` processes of ``threads`` threads each;
    ``threads=1`` gives gunicorn's default sync workers instead, for comparison (their
    figures are named ``scale_portal_sync_*``).
    """
    port = _free_port()
    url = env["DATABASE_URL"]
    tag = f"herald_portal_{secrets.token_hex(5)}"
    if url.startswith("postgresql"):  # its backends' CPU is the web workers' too
        env = {**env, "DATABASE_URL": sa.make_url(url).update_query_dict(
            {"application_name": tag}).render_as_string(hide_password=False)}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "python:portal.gunicorn_config",
         "--workers", str(web_workers), "--threads", str(threads),
         "--worker-class", "gthread" if threads > 1 else "sync",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "portal:create_app()"],
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
        engine = sa.create_engine(url) if url.startswith("postgresql") else None
        try:
            for page in ("list", "detail"):
                paths = [getattr(c, f"{page}_path") for c in customers]
                name = page if threads > 1 else f"sync_{page}"  # named apart when compared
                before = _server_cpu(server.pid, engine, tag)
                done = _wrk(base, name, [c.cookie for c in customers], paths, len(customers),
                            seconds, think_ms)
                after = _server_cpu(server.pid, engine, tag)
                web = sum(after[0].values()) - sum(before[0].get(p, 0.0) for p in after[0])
                database = sum(after[1].values()) - sum(before[1].get(p, 0.0)
                                                        for p in after[1])
                per = 1000 / max(done, 1)
                print(f"BENCH scale_portal_{name}_cpu {(web + database) * per:.1f} ms/request")
                print(f"# {name}: {web * per:.1f} ms CPU per request in gunicorn, "
                      f"{database * per:.1f} ms in the database", file=sys.stderr)
        finally:
            if engine is not None:
                engine.dispose()
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


def _server_cpu(server_pid: int, engine: sa.Engine | None, tag: str
                ) -> tuple[dict[int, float], dict[int, float]]:
    """CPU seconds so far of gunicorn's workers and of the database backends they use."""
    workers = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == server_pid:
            workers[int(stat.parent.name)] = process_cpu(int(stat.parent.name))
    backends = {}
    if engine is not None:
        backends = {pid: process_cpu(pid) for pid in own_backends(engine, tag)}
    return workers, backends


def _wrk(base: str, name: str, cookies: list[str], paths: list[str], connections: int,
         seconds: int, think_ms: int) -> int:
    """wrk with ``connections`` users on ``paths``; prints its figures, returns the requests."""
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
    return int(requests_done)


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


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the portal under load, shared with bench/scale.py."""
    parser.add_argument("--web-workers", type=int, default=2 * (os.cpu_count() or 1),
                        help="gunicorn worker processes (default: two per core)")
    parser.add_argument("--threads", type=int, default=4,
                        help="threads per gunicorn worker (1: gunicorn's sync workers)")
    parser.add_argument("--compare-sync", type=int, metavar="WORKERS", default=0,
                        help="then the same load on this many sync workers (gunicorn's default)")
    parser.add_argument("--users", type=int, default=50, help="concurrent portal users")
    parser.add_argument("--seconds", type=int, default=30, help="load duration per page")
    parser.add_argument("--think-ms", type=int, default=1000,
                        help="a user's average pause between requests (default %(default)s)")


def main(argv: list[str] | None = None) -> None:
    """Sign customers in and put the portal under load, against data already there."""
    parser = argparse.ArgumentParser(description="The scale test's portal half, alone.")
    parser.add_argument("--url", required=True, help="database URL holding the data")
    parser.add_argument("--instance", default=None,
                        help="instance folder (default: a temporary one)")
    add_load_arguments(parser)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="herald-load-") as scratch:
        env = {**os.environ, "DATABASE_URL": args.url,
               "HERALD_INSTANCE_PATH": args.instance or scratch,
               "SECRET_KEY": secrets.token_hex(16), "HERALD_PUBLIC_URL": "http://127.0.0.1:5000",
               "SIGN_IN_LIMIT_PER_ADDRESS": "100000"}
        customers = sign_ins(env, args.users)
        load_portal(env, customers, web_workers=args.web_workers, seconds=args.seconds,
                    think_ms=args.think_ms, threads=args.threads)
        if args.compare_sync:
            load_portal(env, customers, web_workers=args.compare_sync, seconds=args.seconds,
                        think_ms=args.think_ms, threads=1)


if __name__ == "__main__":
    main()
