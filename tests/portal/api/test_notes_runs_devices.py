"""/api/v1 notes, runs and waves, and the customer app's session and device registration."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from distribution.channels.base import ChannelName
from distribution.events import Event, events_for
from distribution.recipients import Address
from distribution.waves import Wave, WaveState
from portal.models import ApiNote, CustomerApiToken
from portal.models.base import utcnow
from portal.recipients_sync import recipient_key
from tests.factories import make_user
from tests.portal.api.conftest import assert_error

CARD = "5555 5555 5555 4444"
IBAN = "BE68539007547034"


def test_notes_are_masked_linked_and_suppressible(make_api, billing, session):
    alice, bob = billing
    crm = make_api(["customers:write", "read"], name="crm")
    agent = make_api(["read", "support"], name="agents")
    response = crm.post(f"/customers/{alice.id}/notes", {
        "summary": f"Asked for a refund to {IBAN}; paid by card {CARD}",
        "invoice_number": "INV-A2",
        "links": {"call_id": "CALL-77", "transcript_url": "https://cc.example/t/77",
                  "ticket_id": "T-1"}}, key="call-77")
    assert response.status_code == 201, response.data
    note = response.get_json()
    assert CARD not in note["summary"] and IBAN not in note["summary"]
    assert "ending 4444" in note["summary"] and "ending 7034" in note["summary"]
    assert note["invoice_number"] == "INV-A2" and note["links"]["call_id"] == "CALL-77"
    stored = session.get(ApiNote, note["id"])
    assert CARD not in stored.summary and IBAN not in stored.summary
    [event] = [e for e in events_for(session, "customer", str(alice.id))
               if e.kind == "note.added"]
    assert event.actor == "api:crm" and CARD not in str(event.payload)
    hidden = crm.post(f"/customers/{alice.id}/notes", {"summary": "Complained about agent",
                                                       "suppressed": True})
    assert hidden.status_code == 201
    assert len(crm.get(f"/customers/{alice.id}/notes").get_json()["data"]) == 2
    seen = agent.get(f"/customers/{alice.id}/notes").get_json()["data"]
    assert [n["id"] for n in seen] == [note["id"]]  # the suppressed one is hidden
    patched = crm.patch(f"/notes/{note['id']}", {"suppressed": True})
    assert patched.get_json()["suppressed"] is True
    assert agent.get(f"/customers/{alice.id}/notes").get_json()["data"] == []
    assert_error(crm.post(f"/customers/{alice.id}/notes", {"summary": "x",
                                                          "invoice_number": "INV-B1"}),
                 422, "invalid_value", "invoice_number")  # Bob's invoice
    assert_error(crm.post(f"/customers/{alice.id}/notes", {
        "summary": "x", "links": {"crm_url": "javascript:alert(1)"}}), 422, "invalid_value",
        "links.crm_url")
    assert_error(crm.post(f"/customers/{alice.id}/notes", {"summary": "x",
                                                          "links": {"fax": "1"}}),
                 422, "unknown_field", "links.fax")
    assert_error(crm.post("/customers/999999/notes", {"summary": "x"}), 404)
    assert_error(crm.patch("/notes/999999", {"suppressed": False}), 404)
    assert_error(agent.post(f"/customers/{alice.id}/notes", {"summary": "x"}), 403)
    assert bob.id  # Bob's notes are his own: none
    assert crm.get(f"/customers/{bob.id}/notes").get_json()["data"] == []


def test_create_a_run_then_start_pause_resume_and_cancel_its_wave(make_api, billing, session):
    ops = make_api(["runs:write", "read"], name="scheduler")
    response = ops.post("/runs", {"name": "October", "issued_from": "2026-10-01",
                                  "issued_to": "2026-10-31", "kind": "invoice"}, key="run-oct")
    assert response.status_code == 201, response.data
    run = response.get_json()
    assert run["total"] >= 1 and run["state"] == "draft"
    assert ops.post("/runs", {"name": "October", "issued_from": "2026-10-01",
                              "issued_to": "2026-10-31", "kind": "invoice"},
                    key="run-oct").get_json()["id"] == run["id"]
    wave_id = run["waves"][0]["id"]
    assert ops.post(f"/waves/{wave_id}/start", {}).get_json()["state"] == "running"
    paused = ops.post(f"/waves/{wave_id}/pause", {"reason": "complaints"})
    assert paused.get_json()["waves"][0]["state"] == "paused"
    assert ops.post(f"/waves/{wave_id}/start").get_json()["waves"][0]["state"] == "running"
    cancelled = ops.post(f"/waves/{wave_id}/cancel", {"reason": "wrong month"})
    assert cancelled.get_json()["waves"][0]["state"] == "cancelled"
    assert session.get(Wave, wave_id).state is WaveState.CANCELLED
    kinds = [(e.kind, e.actor) for e in events_for(session, "wave", str(wave_id))]
    assert kinds == [("wave.started", "api:scheduler"), ("wave.paused", "api:scheduler"),
                     ("wave.resumed", "api:scheduler"), ("wave.cancelled", "api:scheduler")]
    assert_error(ops.post(f"/waves/{wave_id}/pause"), 409, "invalid_state", "wave_id")
    progress = ops.get(f"/runs/{run['id']}").get_json()
    assert progress["state"] == "cancelled" and progress["total"] == run["total"]
    assert_error(ops.get("/runs/999999"), 404)
    assert_error(ops.post("/waves/999999/start"), 404)
    assert_error(ops.post("/runs", {"name": "x", "issued_from": "2026-02-30"}), 422,
                 "invalid_value", "issued_from")
    assert_error(ops.post("/runs", {"name": "x", "wave_size": 0}), 422, "invalid_value",
                 "wave_size")
    assert_error(make_api(["read"]).post("/runs", {"name": "x"}), 403)


def test_customer_app_signs_in_and_registers_its_fcm_token(client, billing, session):
    alice, _ = billing
    bad = client.post("/api/v1/session", json={"email": "alice@example.com",
                                                "password": "wrong"})
    assert_error(bad, 401, "invalid_credentials", "password")
    response = client.post("/api/v1/session", json={"email": "Alice@example.com",
                                                     "password": "correct horse battery"})
    assert response.status_code == 201, response.data
    token = response.get_json()["token"]
    assert token.startswith("hct_")
    stored = session.scalars(sa.select(CustomerApiToken)).one()
    assert token not in (stored.token_sha256, stored.prefix)
    headers = {"Authorization": f"Bearer {token}"}
    fcm = "fcm-token-" + "x" * 40
    device = client.post("/api/v1/devices", json={"fcm_token": fcm, "label": "Pixel 8"},
                         headers={**headers, "Idempotency-Key": "install-1"})
    assert device.status_code == 201, device.data
    address = session.get(Address, device.get_json()["device_id"])
    assert address.channel is ChannelName.FCM and address.verified_at is not None
    assert address.recipient.recipient_key == recipient_key(alice)
    added = session.scalars(sa.select(Event).where(Event.kind == "address.added",
                                                   Event.actor == f"customer:{stored.user_id}"))
    assert fcm not in str([e.payload for e in added])
    again = client.post("/api/v1/devices", json={"fcm_token": fcm, "label": "Pixel 8"},
                        headers={**headers, "Idempotency-Key": "install-1"})
    assert again.headers["Idempotent-Replayed"] == "true"
    # A customer token is not an API key, nor the other way round.
    assert_error(client.get("/api/v1/invoices", headers=headers), 401)
    assert_error(client.post("/api/v1/devices", json={"fcm_token": "short"}, headers=headers),
                 422, "invalid_value", "fcm_token")
    assert client.delete("/api/v1/session", headers=headers).status_code == 204
    assert_error(client.post("/api/v1/devices", json={"fcm_token": fcm}, headers=headers), 401)


def test_staff_cannot_get_an_app_token_and_expired_tokens_stop(client, billing, session):
    make_user(session, email="admin@example.com")
    assert_error(client.post("/api/v1/session", json={"email": "admin@example.com",
                                                      "password": "correct horse battery"}),
                 401)
    response = client.post("/api/v1/session", json={"email": "bob@example.com",
                                                     "password": "correct horse battery"})
    token = response.get_json()["token"]
    session.scalars(sa.select(CustomerApiToken)).one().expires_at = utcnow() - timedelta(1)
    session.flush()
    assert_error(client.post("/api/v1/devices", json={"fcm_token": "f" * 30},
                             headers={"Authorization": f"Bearer {token}"}), 401)


def test_failed_app_sign_ins_are_limited(client, billing, app, monkeypatch):
    import dataclasses

    monkeypatch.setitem(app.config, "HERALD", dataclasses.replace(
        app.config["HERALD"], sign_in_limit_per_account=2))
    for _ in range(2):
        client.post("/api/v1/session", json={"email": "bob@example.com", "password": "no"})
    limited = client.post("/api/v1/session", json={"email": "bob@example.com",
                                                    "password": "correct horse battery"})
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
