"""The ops console's runs and waves: preview, create, watch, steer; roles enforced."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from distribution.deliveries import Delivery, DeliveryState
from distribution.documents import DatabaseStore
from distribution.events import Event, events_for
from distribution.waves import Run, Wave, WaveState
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.models import Role
from portal.ops.charts import ForecastHour, forecast_chart
from tests.factories import invoice_json, make_customer, make_organisation, make_user
from tests.portal.test_web import sign_in

RUN_FORM = {"kind": "invoice", "segment": "", "rate_per_minute": "60",
            "window_start_hour": "0", "window_end_hour": "24", "weekends": "y",
            "auto_continue": "y", "name": "November invoices"}


@pytest.fixture
def staff(session):
    """Two customers with an issued invoice each; an operator, a support agent, a customer."""
    org = make_organisation(session)
    alice = make_customer(session, org, "C1", name="Alice")
    make_customer(session, org, "C2", name="Bob")
    import_documents(session, [
        document_from_mapping(invoice_json(f"INV-{n}", customer), Locator("t", str(n)),
                              source="json")
        for n, customer in ((1, "C1"), (2, "C2"))], file="t", store=DatabaseStore())
    make_user(session, email="alice@example.com", customer=alice)
    make_user(session, email="ops@example.com", role=Role.BILLING_OPERATOR)
    make_user(session, email="agent@example.com", role=Role.SUPPORT_AGENT)


def _csrf(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    # Every page carries the session's token for htmx requests.
    return re.search(rb'"X-CSRFToken": "([^"]+)"', page.data).group(1).decode()


def _wave(session, wave_id: int) -> Wave:
    session.expire_all()  # the request changed it through its own session
    return session.get(Wave, wave_id)


def _create_run(client, **fields) -> int:
    token = _csrf(client, "/ops/runs/new")
    response = client.post("/ops/runs/new", data={**RUN_FORM, **fields, "csrf_token": token,
                                                  "create": "Create run"})
    assert response.status_code == 302, response.data
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_preview_shows_channels_and_finish_and_creates_nothing(client, session, staff):
    sign_in(client, "ops@example.com")
    token = _csrf(client, "/ops/runs/new")
    response = client.post("/ops/runs/new", data={**RUN_FORM, "csrf_token": token,
                                                  "preview": "Preview",
                                                  "capacity_per_hour": "10",
                                                  "contact_rate": "0.05"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert ("2 documents" in page and "2 deliveries" in page) or "deliveries" in page
    assert "Deliveries per channel" in page and "Expected finish" in page
    assert "<svg" in page and "support capacity per hour" in page
    assert session.scalar(sa.select(sa.func.count()).select_from(Run)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 0


def test_operator_creates_starts_pauses_resumes_rerates_and_cancels(client, session, staff):
    sign_in(client, "ops@example.com")
    run_id = _create_run(client)
    run = session.get(Run, run_id)
    assert run.name == "November invoices" and run.auto_continue
    wave = run.waves[0]
    page = client.get(f"/ops/runs/{run_id}").get_data(as_text=True)
    assert "Wave 1" in page and "Not started" in page and 'hx-trigger="every 5s"' in page

    token = _csrf(client, f"/ops/runs/{run_id}")
    client.post(f"/ops/waves/{wave.id}/start", data={"csrf_token": token})
    assert _wave(session, wave.id).state is WaveState.RUNNING
    client.post(f"/ops/waves/{wave.id}/pause", data={"csrf_token": token,
                                                     "reason": "printer queue full"})
    paused = _wave(session, wave.id)
    assert paused.state is WaveState.PAUSED and paused.pause_reason == "printer queue full"
    assert "Paused: printer queue full" in client.get(f"/ops/runs/{run_id}/live").get_data(
        as_text=True)
    client.post(f"/ops/waves/{wave.id}/resume", data={"csrf_token": token})
    client.post(f"/ops/waves/{wave.id}/rate", data={"csrf_token": token,
                                                    "rate_per_minute": "12.5"})
    assert _wave(session, wave.id).rate_per_minute == 12.5
    client.post(f"/ops/waves/{wave.id}/cancel", data={"csrf_token": token, "reason": "wrong"})
    assert _wave(session, wave.id).state is WaveState.CANCELLED
    states = set(session.scalars(sa.select(Delivery.state).where(Delivery.wave_id == wave.id)))
    assert states == {DeliveryState.CANCELLED}

    kinds = [(e.kind, e.actor) for e in events_for(session, "wave", str(wave.id))]
    operator = next(actor for _kind, actor in kinds)
    assert operator.startswith("staff:") and "billing_operator:ops@example.com" in operator
    assert [k for k, _a in kinds] == ["wave.started", "wave.paused", "wave.resumed",
                                      "wave.rate_changed", "wave.cancelled"]


def test_bad_settings_are_refused_with_the_field_named(client, session, staff):
    sign_in(client, "ops@example.com")
    token = _csrf(client, "/ops/runs/new")
    response = client.post("/ops/runs/new", data={
        **RUN_FORM, "csrf_token": token, "create": "Create run", "window_start_hour": "20",
        "window_end_hour": "8", "capacity_per_hour": "10", "window_time_zone": "Mars/Olympus",
        "holidays": "2026-12-25\nChristmas"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "The window must end after it starts" in page
    assert "Give the support capacity and the contact rate together" in page
    assert "Unknown time zone" in page
    assert "&#39;Christmas&#39; is not a date" in page or "'Christmas' is not a date" in page
    assert session.scalar(sa.select(sa.func.count()).select_from(Run)) == 0


def test_support_agents_look_but_do_not_act_and_customers_see_nothing(client, session, staff):
    sign_in(client, "ops@example.com")
    run_id = _create_run(client)
    wave_id = session.get(Run, run_id).waves[0].id
    client.post("/sign-out", data={"csrf_token": _csrf(client, "/ops/runs")})

    sign_in(client, "agent@example.com")
    assert client.get("/ops/runs").status_code == 200
    page = client.get(f"/ops/runs/{run_id}").get_data(as_text=True)
    assert "Wave 1" in page and "Start" not in re.sub(r"<h[1-3][^>]*>.*?</h[1-3]>", "", page)
    assert client.get("/ops/runs/new").status_code == 403
    token = _csrf(client, "/ops/runs")
    assert client.post(f"/ops/waves/{wave_id}/start",
                       data={"csrf_token": token}).status_code == 403
    assert _wave(session, wave_id).state is WaveState.DRAFT
    client.post("/sign-out", data={"csrf_token": token})

    sign_in(client, "alice@example.com")
    assert client.get("/ops/runs").status_code == 403
    assert client.get(f"/ops/runs/{run_id}").status_code == 403


def test_wave_actions_need_the_csrf_token(client, session, staff):
    sign_in(client, "ops@example.com")
    run_id = _create_run(client)
    wave_id = session.get(Run, run_id).waves[0].id
    assert client.post(f"/ops/waves/{wave_id}/start").status_code == 400
    assert _wave(session, wave_id).state is WaveState.DRAFT
    assert client.post("/ops/waves/999999/start",
                       data={"csrf_token": _csrf(client, "/ops/runs")}).status_code == 404


def test_forecast_chart_escapes_labels_and_names_each_series():
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 11, 23, 8, tzinfo=UTC)
    hours = [ForecastHour(start + timedelta(hours=i), 100 - i * 10, 2.5 * i, 10.0, i < 8)
             for i in range(10)]
    svg = str(forecast_chart(hours, title="Plan <b>", releases_label="releases & more",
                             contacts_label="contacts", capacity_label="capacity"))
    assert "<b>" not in svg and "Plan &lt;b&gt;" in svg and "releases &amp; more" in svg
    assert svg.count('class="bar"') == 10 + 1  # one per hour that releases, one in the legend
    assert 'class="capacity"' in svg and 'class="contacts"' in svg
    assert svg.count('class="closed"') == 2  # the hours outside the window
    assert "style=" not in svg  # the CSP forbids inline styles


def test_runs_list_counts_with_a_fixed_number_of_queries(client, session, staff):
    sign_in(client, "ops@example.com")
    for _ in range(3):
        _create_run(client, name="again")  # later runs find the documents already sent
    statements = []

    def count(*_args, **_kwargs):
        statements.append(1)

    engine = session.get_bind().engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        page = client.get("/ops/runs").get_data(as_text=True)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert page.count("again") == 3
    assert len(statements) <= 8, len(statements)
    assert session.scalar(sa.select(sa.func.count()).select_from(Event).where(
        Event.kind == "run.created")) == 3


def _send_everything(session, run_id: int) -> None:
    """Mark the run's deliveries sent, as the workers would (the log gets its events)."""
    from distribution.deliveries import transition

    for delivery in session.scalars(sa.select(Delivery).join(Wave).where(Wave.run_id == run_id)):
        transition(session, delivery.id, DeliveryState.PENDING, DeliveryState.SENT,
                   event="delivery.sent", actor="test")
    session.flush()


def test_delivery_log_search_trail_csv_and_chain_check(client, session, staff):
    sign_in(client, "ops@example.com")
    run_id = _create_run(client)
    _send_everything(session, run_id)

    page = client.get("/ops/log?invoice=INV-1").get_data(as_text=True)
    assert re.search(r"invoice:\d+:INV-1<", page) and not re.search(r"invoice:\d+:INV-2<", page)
    assert "The full trail of INV-1" in page
    by_email = client.get("/ops/log?email=C2@example.com&channel=email").get_data(as_text=True)
    assert re.search(r"invoice:\d+:INV-2<", by_email)
    assert not re.search(r"invoice:\d+:INV-1<", by_email)
    none = client.get("/ops/log?customer=NOPE").get_data(as_text=True)
    assert "No delivery matches these filters." in none

    exported = client.get("/ops/log?state=sent&format=csv")
    assert exported.mimetype == "text/csv"
    lines = exported.get_data(as_text=True).splitlines()
    assert lines[0].startswith("delivery_id,subject") and len(lines) == 1 + 4

    invoice_id = session.scalar(sa.select(sa.text("id")).select_from(sa.text("invoices"))
                                .where(sa.text("number = 'INV-1'")))
    trail = client.get(f"/ops/invoices/{invoice_id}/trail").get_data(as_text=True)
    for kind in ("invoice.issued", "preference.resolved", "delivery.planned", "delivery.sent"):
        assert kind in trail
    csv_trail = client.get(f"/ops/invoices/{invoice_id}/trail?format=csv").get_data(
        as_text=True)
    assert csv_trail.startswith("event_id,at,about,kind,actor,details,hash")

    token = _csrf(client, "/ops/audit")
    checked = client.post("/ops/audit", data={"csrf_token": token}).get_data(as_text=True)
    assert "The chain is intact" in checked
    assert client.post("/ops/audit").status_code == 400  # no CSRF token
    assert client.get("/ops/invoices/999999/trail").status_code == 404
