"""Idempotency-Key: a retried POST acts once, even when the retries arrive at the same moment."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
import sqlalchemy as sa

from distribution.events import Event
from portal import create_app
from portal.api.idempotency import purge
from portal.api.keys import create_key
from portal.db import get_database
from portal.migrate import upgrade
from portal.models import ApiNote, IdempotencyRecord, SignInAttempt
from portal.models.base import utcnow
from tests.factories import make_customer, make_organisation, make_user
from tests.portal.api.conftest import assert_error


@pytest.fixture
def customer(session):
    return make_customer(session, make_organisation(session))


def note_events(session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(Event).where(
        Event.kind == "note.added"))


def test_same_key_same_body_replays_the_first_answer_without_acting_again(api, customer,
                                                                           session):
    path = f"/customers/{customer.id}/notes"
    first = api.post(path, {"summary": "Called about the bill"}, key="call-1")
    assert first.status_code == 201, first.data
    again = api.post(path, {"summary": "Called about the bill"}, key="call-1")
    assert again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert session.scalar(sa.select(sa.func.count()).select_from(ApiNote)) == 1
    assert note_events(session) == 1
    # JSON written differently (key order, spaces) is the same request.
    spaced = api.client.post(f"/api/v1{path}", data='{ "summary" : "Called about the bill" }',
                             headers=api.headers({"Idempotency-Key": "call-1",
                                                  "Content-Type": "application/json"}))
    assert spaced.status_code == 201 and spaced.headers["Idempotent-Replayed"] == "true"
    another = api.post(path, {"summary": "Called about the bill"}, key="call-2")
    assert another.get_json()["id"] != first.get_json()["id"]


def test_same_key_different_body_is_refused(api, customer, session):
    path = f"/customers/{customer.id}/notes"
    assert api.post(path, {"summary": "One"}, key="k").status_code == 201
    error = assert_error(api.post(path, {"summary": "Two"}, key="k"), 422,
                         "idempotency_key_reused", "Idempotency-Key")
    assert "different" in error["message"]
    assert session.scalar(sa.select(sa.func.count()).select_from(ApiNote)) == 1


def test_an_error_answer_releases_the_key_for_a_corrected_retry(api, customer, session):
    path = f"/customers/{customer.id}/notes"
    assert_error(api.post(path, {"summary": ""}, key="retry-me"), 422, field="summary")
    assert session.scalar(sa.select(sa.func.count()).select_from(IdempotencyRecord)) == 0
    # A corrected body is a new request under the same key: nothing was done the first time.
    assert api.post(path, {"summary": "Fixed"}, key="retry-me").status_code == 201


def test_keys_are_per_caller(make_api, customer, session):
    path = f"/customers/{customer.id}/notes"
    one, two = make_api(), make_api()
    assert one.post(path, {"summary": "A"}, key="same").status_code == 201
    assert two.post(path, {"summary": "A"}, key="same").headers.get("Idempotent-Replayed") \
        is None
    assert session.scalar(sa.select(sa.func.count()).select_from(ApiNote)) == 2


def test_a_bad_idempotency_key_is_refused(api, customer):
    response = api.post(f"/customers/{customer.id}/notes", {"summary": "x"}, key="x" * 256)
    assert_error(response, 422, "invalid_idempotency_key", "Idempotency-Key")


def test_purge_keeps_keys_for_at_least_24_hours(session):
    now = utcnow()
    for key, age in (("old", timedelta(hours=25)), ("recent", timedelta(hours=23))):
        session.add(IdempotencyRecord(caller="key:1", key=key, request_sha256="0" * 64,
                                      method="POST", path="/api/v1/x", state="done",
                                      created_at=now - age))
    session.flush()
    assert purge(session, older_than=timedelta(hours=1)) == 1  # never less than 24 hours
    left = session.scalars(sa.select(IdempotencyRecord.key)).all()
    assert left == ["recent"]


@pytest.fixture
def served(databases, tmp_path):
    """A real threaded server on a database of its own, with a customer and a key."""
    from werkzeug.serving import make_server

    app = create_app({"DATABASE_URL": databases.new_url(),
                      "HERALD_INSTANCE_PATH": str(tmp_path), "TESTING": True})
    database = get_database(app)
    upgrade(database.engine)
    with database.session_scope() as session:
        customer = make_customer(session, make_organisation(session))
        make_user(session, email="app@example.com", customer=customer)
        _key, secret = create_key(session, "concurrent", ["read", "customers:write"],
                                  actor="test")
        customer_id = customer.id
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}", secret, customer_id
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        database.engine.dispose()


def _post(url: str, secret: str, body: dict, key: str) -> tuple[int, str, str | None]:
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json",
               "Idempotency-Key": key}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode(), \
                response.headers.get("Idempotent-Replayed")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), None


def test_concurrent_requests_with_one_key_act_once_and_get_the_same_answer(served):
    app, base, secret, customer_id = served
    url = f"{base}/api/v1/customers/{customer_id}/notes"
    body = {"summary": "Caller disputes the roaming charge"}
    threads_count = 6
    barrier = threading.Barrier(threads_count)
    results: list[tuple[int, str, str | None]] = []

    def call():
        barrier.wait()
        results.append(_post(url, secret, body, "call-centre-call-77"))

    threads = [threading.Thread(target=call) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == threads_count
    assert {status for status, _, _ in results} == {201}, results
    assert len({text for _, text, _ in results}) == 1  # identical answers
    assert sum(1 for _, _, replayed in results if replayed == "true") == threads_count - 1
    with get_database(app).session_scope() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ApiNote)) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(Event).where(
            Event.kind == "note.added")) == 1


def test_on_a_real_server_errors_release_the_key_and_failed_sign_ins_are_counted(served):
    """Each step's own transaction commits while the request's is closed (SQLite: one writer)."""
    app, base, secret, customer_id = served
    url = f"{base}/api/v1/customers/{customer_id}/notes"
    started = time.monotonic()
    assert _post(url, secret, {"summary": ""}, "k-1")[0] == 422
    assert _post(url, secret, {"summary": "fixed"}, "k-1")[0] == 201
    for _ in range(2):
        status, text, _ = _post(f"{base}/api/v1/session", "",
                                {"email": "app@example.com", "password": "wrong"}, "s")
        assert status == 401, text
    status, text, _ = _post(f"{base}/api/v1/session", "",
                            {"email": "app@example.com", "password": "correct horse battery"},
                            "s")
    assert status == 201, text
    assert time.monotonic() - started < 10  # nothing waited for a lock
    with get_database(app).session_scope() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(SignInAttempt).where(
            SignInAttempt.succeeded.is_(False))) == 2
