"""The signer's page in Debian's Chromium: drawing with a finger on a phone, typing with a
keyboard on a desktop, under the real content security policy, checked by axe-core.

Without Chromium or axe-core a developer's run skips these tests with the reason; with
``CI`` set that is an error, as for ``tests/browser``.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image
from werkzeug.serving import WSGIRequestHandler, make_server

from distribution.documents import DatabaseStore
from portal import create_app
from portal.db import get_database
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.migrate import upgrade
from portal.models import Invoice, RequestStatus, SignatureRequest, SigningMode
from portal.signing.context import SigningContext
from portal.signing.requests import SignerInput, request_invoice_signatures, signing_link
from tests.browser.accessibility import AXE_PATH, assert_accessible
from tests.factories import invoice_json, make_customer, make_organisation

CHROMIUM = Path(os.environ.get("HERALD_CHROMIUM") or "/usr/bin/chromium")
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser" / "signing"
CONSENT = "I confirm the amounts of this invoice."


def _missing() -> str | None:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"Chromium not found at {CHROMIUM}: install Debian's 'chromium'"
    if not AXE_PATH.is_file():
        return f"axe-core not found at {AXE_PATH}: run 'make vendor'"
    return None


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


class _Quiet(WSGIRequestHandler):
    def log_request(self, code="-", size="-") -> None:
        pass


@pytest.fixture(scope="module")
def browser():
    problem = _missing()
    if problem is not None:
        if _in_ci():
            pytest.fail(f"{problem} (CI is set: the browser tests must run)", pytrace=False)
        pytest.skip(f"browser test not run: {problem}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def live(databases, tmp_path_factory):
    """The portal served on loopback with one request for two signers."""
    holder = {}
    server = make_server("127.0.0.1", 0, lambda e, s: holder["app"](e, s), threaded=True,
                         request_handler=_Quiet)
    url = f"http://127.0.0.1:{server.server_port}"
    app = create_app({"DATABASE_URL": databases.new_url(), "HERALD_PUBLIC_URL": url,
                      "HERALD_INSTANCE_PATH": str(tmp_path_factory.mktemp("signing-live"))})
    upgrade(get_database(app).engine)
    holder["app"] = app
    with get_database(app).session_scope() as session:
        org = make_organisation(session)
        make_customer(session, org, "C1", name="Anna Peeters")
        import_documents(session, [document_from_mapping(invoice_json("INV-1", "C1"),
                                                         Locator("t", "1"), source="json")],
                         file="t", store=DatabaseStore())
        invoice = session.scalars(sa.select(Invoice)).one()
        with app.app_context():
            context = SigningContext.from_app(app)
        request = request_invoice_signatures(
            session, invoice, [SignerInput("anna@customer.example"),
                               SignerInput("ben@customer.example")],
            mode=SigningMode.SIGN, consent_text=CONSENT, actor="test", context=context)
        links = [signing_link(s, context).removeprefix(url) for s in request.signers]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, url, links
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        get_database(app).engine.dispose()


def _watch(page) -> list[str]:
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"JavaScript error: {error}"))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    return problems


def _touch_stroke(page, points) -> None:
    """Draw with one finger: Chromium turns these touches into pointer events."""
    cdp = page.context.new_cdp_session(page)
    x, y = points[0]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for x, y in points[1:]:
        cdp.send("Input.dispatchTouchEvent",
                 {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_first_signer_draws_with_a_finger_then_second_types_with_the_keyboard(browser, live):
    app, url, (first_link, second_link) = live
    ARTEFACTS.mkdir(parents=True, exist_ok=True)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                has_touch=True, device_scale_factor=2)
    page = phone.new_page()
    problems = _watch(page)
    page.goto(url + first_link)
    page.wait_for_load_state()
    pad = page.locator("[data-signature-pad]")
    assert pad.is_visible()  # the script showed the pad
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert_accessible(page)
    page.screenshot(path=str(ARTEFACTS / "01-phone-sign.png"), full_page=True)
    page.get_by_label("I have read the document and agree to the text above.").check()
    box = page.locator("[data-signature-pad] canvas").bounding_box()
    stroke = [(box["x"] + box["width"] * f, box["y"] + box["height"] * (0.3 + 0.4 * (i % 2)))
              for i, f in enumerate((0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8))]
    _touch_stroke(page, stroke)
    drawn = page.locator("#drawn_signature").input_value()
    assert drawn.startswith("data:image/png;base64,")
    page.screenshot(path=str(ARTEFACTS / "02-phone-drawn.png"), full_page=True)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign", exact=True).click()
    assert "You signed this document" in page.content()
    assert_accessible(page)
    page.screenshot(path=str(ARTEFACTS / "03-phone-signed.png"), full_page=True)
    assert problems == []
    phone.close()

    desktop = browser.new_context(viewport={"width": 1280, "height": 800})
    page = desktop.new_page()
    problems = _watch(page)
    page.goto(url + second_link)
    page.wait_for_load_state()
    assert_accessible(page)
    # Keyboard only: tab to the consent box, tick it, tab to the name, type, submit.
    page.locator("body").focus()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.name") == "consent":
            break
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "typed_name"
    page.keyboard.type("Ben Janssens")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "You signed this document" in page.content()
    page.screenshot(path=str(ARTEFACTS / "04-desktop-signed.png"), full_page=True)
    assert problems == []
    desktop.close()

    with get_database(app).session_scope() as session:
        request = session.scalars(sa.select(SignatureRequest)).one()
        assert request.status is RequestStatus.COMPLETED
        anna, ben = (s.signature for s in request.signers)
        assert ben.typed_name == "Ben Janssens" and ben.drawn_png is None
        image = Image.open(io.BytesIO(anna.drawn_png))
        assert image.format == "PNG" and image.size == (600, 200)
        # The stroke left ink: some pixels are not transparent.
        assert image.convert("RGBA").getchannel("A").getextrema()[1] > 0
        assert "HeadlessChrome" in anna.user_agent  # what the browser said, recorded
