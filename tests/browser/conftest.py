"""Browser tests: the portal served for real, driven by Debian's Chromium through Playwright.

One live server per run: the portal on a migrated database of its own (SQLite,
or a PostgreSQL schema when ``HERALD_TEST_DATABASE_URL`` is set), seeded and
committed, served by werkzeug in a thread on a free loopback port. One
Chromium per run, a fresh browser context per test, on a desktop and a phone
viewport. Every page a test visits gets a screenshot under
``test-artifacts/browser/<test>/`` and an axe-core check; a page visited but
never checked, a JavaScript error, a content security policy violation or an
exception in the server fails the test.

Without Chromium (or axe-core) a developer's run reports each browser test as
skipped, by name; with ``CI`` set it is an error, so CI never skips them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, sync_playwright
from werkzeug.serving import WSGIRequestHandler, make_server

from portal import create_app
from portal.db import get_database
from portal.migrate import upgrade
from portal.models import Organisation
from tests.browser.accessibility import AXE_PATH, assert_accessible
from tests.browser.seed import Person, Seeded, add_customer, seed
from tests.peers import stripe_api
from tests.peers.stripe_api import StripePeer

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ARTEFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = Path(os.environ.get("HERALD_CHROMIUM") or "/usr/bin/chromium")
# Root in CI containers needs --no-sandbox; background networking would phone home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"]
# The phone runs in dark mode, so axe-core checks the colours of both schemes.
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 800}, "color_scheme": "light"},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
              "device_scale_factor": 2, "color_scheme": "dark"},
}
TIMEOUT_MS = 10_000


def in_ci() -> bool:
    """True in CI (``.ci/run`` exports CI=true), where nothing may be skipped for lack of tools."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_tool() -> str | None:
    """Why the browser tests cannot run here, or None when Chromium and axe-core are present."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return (f"Chromium not found at {CHROMIUM}: install Debian's 'chromium' package or "
                "point HERALD_CHROMIUM at a Chromium binary")
    if not AXE_PATH.is_file():
        return f"axe-core not found at {AXE_PATH}: run 'make vendor'"
    return None


def _is_browser_test(item: pytest.Item) -> bool:
    return HERE in Path(item.path).resolve().parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Off CI, mark the browser tests skipped (with the reason) when a tool is missing."""
    problem = missing_tool()
    if problem is None or in_ci():
        return  # in CI the `browser` fixture turns the problem into an error
    skip = pytest.mark.skip(reason=f"browser test not run: {problem}")
    for item in items:
        if _is_browser_test(item):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Name every skipped browser test, so a run without Chromium cannot pass unnoticed."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if r.nodeid.startswith("tests/browser/")]
    if not skipped:
        return
    terminalreporter.section(f"{len(skipped)} browser test(s) skipped", yellow=True)
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        reason = str(reason).removeprefix("Skipped: ")
        terminalreporter.write_line(f"SKIPPED {report.nodeid}: {reason}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test, so fixtures know whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# The live server


class _QuietHandler(WSGIRequestHandler):
    """No access log on the test output; errors still show."""

    def log_request(self, code="-", size="-") -> None:
        pass


@dataclass(slots=True)
class LiveServer:
    """The portal served on loopback, with what was seeded in it."""

    url: str
    app: Flask
    seeded: Seeded
    stripe: StripePeer
    _count: itertools.count = field(default_factory=lambda: itertools.count(1))

    def database(self):
        """A session on the live server's database, committed when the block ends."""
        return get_database(self.app).session_scope()

    def new_customer(self, *, language: str = "en", invoices: int = 1,
                     render: bool = False, sign_in: bool = True) -> Person:
        """A customer of the test's own (committed): ``invoices`` issued invoices and a
        sign-in (none when ``sign_in`` is false; ``Person.email`` is then still free).

        Invoice numbers are ``INV-<customer>-<n>``; PDFs render on first download unless
        ``render`` asks for them now.
        """
        number = f"cust{next(self._count)}"
        with get_database(self.app).session_scope() as session:
            org = session.get(Organisation, self.seeded.organisation_id)
            return add_customer(session, org, number, name=f"Customer {number}",
                                language=language, public_url=self.url, render=render,
                                sign_in=sign_in,
                                invoices=tuple(f"INV-{number.upper()}-{n}"
                                               for n in range(1, invoices + 1)))


@pytest.fixture(scope="session")
def stripe_standin() -> Iterator[StripePeer]:
    """The local stand-in for Stripe's API (tests/peers), for the live server's whole run."""
    peer = StripePeer()
    server = ThreadingHTTPServer((peer.host, 0), stripe_api._handler(peer))
    peer.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="stripe-standin", daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def live_server(databases, tmp_path_factory, stripe_standin) -> Iterator[LiveServer]:
    """The portal app on its own migrated, seeded database, served by werkzeug in a thread.

    Stripe is configured (against the local stand-in) from the start, as in a real
    deployment: the app allows Stripe's checkout origin in its CSP only when built so.
    """
    holder: dict[str, Flask] = {}

    def dispatch(environ, start_response):
        return holder["app"](environ, start_response)

    # Bound first, so the app can be told its public URL (links in PDFs, review URLs).
    server = make_server("127.0.0.1", 0, dispatch, threaded=True, request_handler=_QuietHandler)
    url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    database = None
    try:
        app = create_app({
            "DATABASE_URL": databases.new_url(),
            "HERALD_INSTANCE_PATH": str(tmp_path_factory.mktemp("browser-instance")),
            "HERALD_PUBLIC_URL": url,
            "EINVOICE_RULES_DIR": "",  # Herald's own checks only: the official rules are slow
            "STRIPE_SECRET_KEY": stripe_api.SECRET_KEY,
            "STRIPE_WEBHOOK_SECRET": stripe_api.WEBHOOK_SECRET,
            "STRIPE_API_BASE": stripe_standin.api_base,
        })
        database = get_database(app)
        upgrade(database.engine)
        with database.session_scope() as session:
            seeded = seed(session, url)
        holder["app"] = app
        thread.start()
        yield LiveServer(url=url, app=app, seeded=seeded, stripe=stripe_standin)
    finally:
        if thread.is_alive():
            server.shutdown()
            thread.join(timeout=10)
        server.server_close()
        if database is not None:
            database.engine.dispose()


# The browser


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for this package; in CI a missing browser is an error, not a skip.

    Package scope, not session: Playwright's sync API keeps an event loop running in the
    main thread while it lives, and the tests after this package call asyncio.run().
    """
    problem = missing_tool()
    if problem is not None:
        pytest.fail(f"{problem} (CI is set: the browser tests must run)", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request) -> str:
    """The viewport a test runs in: each flow test runs on a desktop and on a phone."""
    return request.param


class Tab:
    """One test's browser tab, with screenshots, accessibility checks and error watching."""

    def __init__(self, page: Page, viewport: str, live: LiveServer, artefacts: Path) -> None:
        self.page = page
        self.viewport = viewport
        self.live = live
        self.artefacts = artefacts
        self.steps = 0
        self.visited: list[str] = []
        self.checked: set[str] = set()
        self.problems: list[str] = []
        # Every page loaded counts; htmx swaps within a page are checked where a test says.
        page.on("load", self._loaded)
        page.on("pageerror", lambda error: self.problems.append(f"JavaScript error: {error}"))
        page.on("console", self._console)
        page.on("response", self._response)

    @property
    def is_phone(self) -> bool:
        return self.viewport == "phone"

    def _loaded(self, page: Page) -> None:
        if page.url.startswith(self.live.url):
            self.visited.append(urldefrag(page.url).url)

    def _console(self, message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.problems.append(f"CSP violation on {self.page.url}: {message.text}")

    def _response(self, response) -> None:
        # The server's traceback is in the captured log; the test names the request.
        if response.status >= 500:
            self.problems.append(f"server error {response.status} on {response.request.method} "
                                 f"{response.url}")

    def path(self) -> str:
        """The current page's path and query, without the server's address."""
        return self.page.url.removeprefix(self.live.url)

    def goto(self, path: str):
        """Open ``path`` on the live server; returns Playwright's response."""
        return self.page.goto(self.live.url + path)

    def check(self, step: str) -> None:
        """Screenshot the page as step ``step`` and fail on serious accessibility problems."""
        self.page.wait_for_load_state()
        self.steps += 1
        name = re.sub(r"[^0-9A-Za-z_-]+", "-", step).strip("-")
        self.screenshot(f"{self.steps:02d}-{name}")
        # A server or script error so far fails here, at the step, not later on a timeout.
        assert not self.problems, "\n".join(self.problems)
        assert_accessible(self.page)
        self._assert_fits_the_screen()
        self.checked.add(urldefrag(self.page.url).url)

    def _assert_fits_the_screen(self) -> None:
        # A page wider than the phone makes people scroll sideways, and a phone browser
        # zooms such a page out until its text is too small to read.
        width = VIEWPORTS[self.viewport]["viewport"]["width"]
        wider = self.page.evaluate("""() => [...document.querySelectorAll("body *")]
            .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth
                          && !el.closest(".overflow-auto"))
            .slice(0, 5).map(el => el.tagName.toLowerCase() + (el.className ? "." +
                String(el.className).split(" ").join(".") : "") + " " +
                el.textContent.trim().slice(0, 30))""")
        scroll_width = self.page.evaluate("() => document.documentElement.scrollWidth")
        assert scroll_width <= width, (
            f"{self.page.url} is {scroll_width}px wide on a {width}px {self.viewport} screen; "
            f"wider elements: {wider}")

    def screenshot(self, name: str) -> Path:
        """Save a full-page screenshot as ``<viewport>-<name>.png``; returns its path."""
        path = self.artefacts / f"{self.viewport}-{name}.png"
        self.page.screenshot(path=path, full_page=True)
        return path

    def sign_in(self, person: Person, *, password: str | None = None) -> None:
        """Sign in through the form, checking the sign-in page on the way."""
        self.goto("/sign-in")
        self.check("sign-in")
        self.page.get_by_label("Email").fill(person.email)
        self.page.get_by_label("Password").fill(password or person.password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state()

    def sign_out(self) -> None:
        """Sign out with the header's button."""
        self.page.get_by_role("button", name="Sign out", exact=True).click()
        self.page.wait_for_url(re.compile(r"/sign-in"))

    def unchecked_pages(self) -> list[str]:
        """Pages the test navigated to but never checked (screenshot and axe-core)."""
        return sorted(set(self.visited) - self.checked)


@pytest.fixture
def tab(browser: Browser, live_server: LiveServer, viewport: str, request) -> Iterator[Tab]:
    """A fresh browser context (no cookies) on ``viewport``, opened on the live server."""
    artefacts = ARTEFACTS / request.node.originalname
    artefacts.mkdir(parents=True, exist_ok=True)
    for old in artefacts.glob(f"{viewport}-*.png"):
        old.unlink()
    context = browser.new_context(locale="en-GB", timezone_id="Europe/Brussels",
                                  accept_downloads=True, **VIEWPORTS[viewport])
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    tab = Tab(page, viewport, live_server, artefacts)
    try:
        yield tab
    finally:
        call = getattr(request.node, "report_call", None)
        failed = call is None or call.failed
        if failed:
            # A page that is already gone must not hide the real failure.
            with contextlib.suppress(Exception):
                tab.screenshot("failure")
        context.close()
    problems = list(tab.problems)
    if failed:
        # The test's own failure is the report; these go with it as captured output.
        for problem in problems:
            print(problem)
        return
    problems += [f"page visited but never checked: {url}" for url in tab.unchecked_pages()]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
