"""The demo's local push services, driven by the real web push and FCM channels."""

from __future__ import annotations

import json
import stat
import threading
import time
from pathlib import Path

import pytest
import requests

from distribution.channels.base import ChannelError, ChannelName, ErrorKind, OutgoingMessage
from distribution.channels.fcm import FcmChannel
from distribution.channels.webpush import WebPushChannel
from distribution.vapid import VapidKeys
from portal.channels import build_channels
from portal.config import ConfigError, Settings
from portal.demo.push_sinks import (
    APP_PUSH_FOLDER,
    SERVICE_ACCOUNT_FILE,
    STATE_FILE,
    WEB_PUSH_FOLDER,
    DemoPushState,
    FcmSink,
    WebPushSink,
    keep_lookups_local,
    repoint_subscriptions,
)


def message(address: str, *, subject: str = "Your invoice INV-2026-000042",
            text: str = "EUR 48.20, due on 15 December.") -> OutgoingMessage:
    # ``data`` as distribution.sending builds it (its "message_type" is a key FCM reserves).
    return OutgoingMessage(delivery_id=42, idempotency_key="delivery-42-1", message_type="invoice",
                           address=address, recipient_name="Ana", language="en",
                           subject=subject, text=text, link="http://127.0.0.1:5000/invoices/42",
                           data={"message_type": "invoice", "delivery_id": "42",
                                 "number": "INV-2026-000042"})


def kept(folder: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


@pytest.fixture
def web_push(tmp_path):
    sink = WebPushSink(DemoPushState(tmp_path)).start()
    yield sink
    sink.stop()


@pytest.fixture
def fcm(tmp_path, monkeypatch):
    from google.auth import _regional_access_boundary_utils as lookups

    # keep_lookups_local patches google-auth for the process; undo it after the test.
    monkeypatch.setattr(lookups, "get_service_account_rab_endpoint",
                        lookups.get_service_account_rab_endpoint)
    sink = FcmSink(DemoPushState(tmp_path)).start()
    keep_lookups_local(sink)
    yield sink
    sink.stop()


def test_web_push_is_verified_decrypted_and_kept(tmp_path, web_push):
    subscription = web_push.state.new_subscription()
    assert subscription["endpoint"].startswith(f"{web_push.origin}/push/")
    channel = WebPushChannel(VapidKeys.generate(), "mailto:billing@helder.example",
                             allow_http=True)
    try:
        receipt = channel.send(message(json.dumps(subscription)))
    finally:
        channel.close()
    assert receipt.detail["status"] == 201
    [record] = kept(tmp_path / WEB_PUSH_FOLDER)
    assert record["notification"]["title"] == "Your invoice INV-2026-000042"
    assert record["notification"]["body"] == "EUR 48.20, due on 15 December."
    assert record["notification"]["url"] == "http://127.0.0.1:5000/invoices/42"
    assert record["vapid_subject"] == "mailto:billing@helder.example"
    assert record["topic"] == "delivery-42-1"


def test_web_push_refuses_a_bad_signature_and_unknown_subscriptions(web_push):
    subscription = web_push.state.new_subscription()
    forged = requests.post(subscription["endpoint"], data=b"x", timeout=5, headers={
        "Authorization": "vapid t=a.b.c, k=BAAA", "TTL": "60",
        "Content-Encoding": "aes128gcm"})
    assert forged.status_code == 401
    gone = {**subscription, "endpoint": f"{web_push.origin}/push/nobody"}
    channel = WebPushChannel(VapidKeys.generate(), "mailto:billing@helder.example",
                             allow_http=True)
    try:
        with pytest.raises(ChannelError) as caught:
            channel.send(message(json.dumps(gone)))
    finally:
        channel.close()
    assert caught.value.kind is ErrorKind.ADDRESS_DEAD  # 410: the engine prunes it
    assert not list((web_push.state.instance_path / WEB_PUSH_FOLDER).glob("*.json"))


def test_fcm_message_goes_through_the_token_exchange_and_is_kept(tmp_path, fcm):
    token = fcm.state.new_device_token()
    channel = FcmChannel(fcm.service_account_file, app_name="demo-sink-test",
                         fcm_url=fcm.origin)
    try:
        receipt = channel.send(message(token))
        with pytest.raises(ChannelError) as caught:
            channel.send(message("a-token-nobody-registered"))
    finally:
        channel.close()
    assert receipt.provider_message_id.startswith("projects/helder-demo/messages/")
    assert caught.value.kind is ErrorKind.ADDRESS_DEAD
    [record] = kept(tmp_path / APP_PUSH_FOLDER)
    assert record["name"] == receipt.provider_message_id
    assert record["message"]["token"] == token
    assert record["message"]["notification"]["title"] == "Your invoice INV-2026-000042"
    assert record["message"]["data"]["herald_delivery_id"] == "42"
    assert record["message"]["data"]["herald_message_type"] == "invoice"
    assert "message_type" not in record["message"]["data"]


def test_fcm_refuses_a_request_without_a_token(fcm):
    response = requests.post(f"{fcm.origin}/v1/projects/helder-demo/messages:send",
                             json={"message": {"token": "x"}}, timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"


def test_google_auth_side_lookup_stays_on_the_sink(fcm):
    seen: list[str] = []
    original = fcm.handle_get

    def spy(path, headers):
        seen.append(path)
        return original(path, headers)

    fcm.handle_get = spy
    channel = FcmChannel(fcm.service_account_file, app_name="demo-sink-lookup",
                         fcm_url=fcm.origin)
    try:
        channel.send(message(fcm.state.new_device_token()))
    finally:
        channel.close()
    deadline = time.monotonic() + 3
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert seen and seen[0].endswith("/allowedLocations")


def test_secrets_are_private_and_survive_a_restart(tmp_path):
    state = DemoPushState(tmp_path)
    subscription = state.new_subscription()
    token = state.new_device_token()
    sink = FcmSink(state).start()
    sink.stop()
    for name in (STATE_FILE, SERVICE_ACCOUNT_FILE):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    again = DemoPushState(tmp_path)
    assert again.subscription(subscription["endpoint"].rsplit("/", 1)[1]) == subscription
    assert again.has_device(token)
    assert again.service_account_key().private_numbers() == \
        state.service_account_key().private_numbers()
    restarted = WebPushSink(again).start()
    try:
        assert subscription["endpoint"].startswith(restarted.origin + "/")  # same port
    finally:
        restarted.stop()


def test_a_taken_port_moves_the_sink_and_its_subscriptions(tmp_path):
    state = DemoPushState(tmp_path)
    subscription = state.new_subscription()
    address = (7, json.dumps(subscription))
    blocker = WebPushSink(state).start()  # holds the kept port
    try:
        moved = WebPushSink(DemoPushState(tmp_path)).start()
        try:
            assert moved.origin != blocker.origin
            changed = repoint_subscriptions(DemoPushState(tmp_path), [address, (8, "{}")])
            assert list(changed) == [7]
            assert json.loads(changed[7])["endpoint"].startswith(moved.origin + "/push/")
            assert json.loads(changed[7])["keys"] == subscription["keys"]
        finally:
            moved.stop()
    finally:
        blocker.stop()


def test_concurrent_pushes_each_keep_their_file(tmp_path, web_push):
    subscriptions = [web_push.state.new_subscription() for _ in range(4)]
    channel = WebPushChannel(VapidKeys.generate(), "mailto:billing@helder.example",
                             allow_http=True)
    errors: list[Exception] = []

    def send(sub):
        try:
            channel.send(message(json.dumps(sub)))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(sub,)) for sub in subscriptions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    channel.close()
    assert not errors
    assert len(kept(tmp_path / WEB_PUSH_FOLDER)) == 4


def test_settings_aim_the_channels_at_the_sinks(tmp_path, fcm):
    settings = Settings.from_env(tmp_path, {
        "VAPID_SUBJECT": "mailto:billing@helder.example", "WEB_PUSH_ALLOW_HTTP": "true",
        "FCM_SERVICE_ACCOUNT_FILE": str(fcm.service_account_file), "FCM_API_URL": fcm.origin})
    channels = build_channels(settings)
    try:
        assert channels[ChannelName.WEB_PUSH].allow_http
        assert channels[ChannelName.FCM].send_url == \
            f"{fcm.origin}/v1/projects/helder-demo/messages:send"
    finally:
        channels[ChannelName.FCM].close()
        channels[ChannelName.WEB_PUSH].close()


def test_production_defaults_stay_safe(tmp_path):
    settings = Settings.from_env(tmp_path, {})
    assert settings.web_push_allow_http is False
    assert settings.fcm_api_url is None
    with pytest.raises(ConfigError, match="WEB_PUSH_ALLOW_HTTP"):
        Settings.from_env(tmp_path, {"WEB_PUSH_ALLOW_HTTP": "perhaps"})
    with pytest.raises(ConfigError, match="FCM_API_URL"):
        Settings.from_env(tmp_path, {"FCM_API_URL": "fcm.local"})
