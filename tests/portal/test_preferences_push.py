"""Web push from "How we reach you": key, subscription, test notification to a real push service;
and the installable app: service worker, manifest, icons."""

from __future__ import annotations

import dataclasses
import json
import struct
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from distribution.channels.base import ChannelName
from distribution.recipients import Address
from portal.channels import vapid_keys
from portal.preferences.icons import ICONS, render
from portal.preferences.user_agents import device_label
from portal.recipients_sync import recipient_key, sync_customer
from tests.peers.webpush_service import (  # noqa: F401 - the fixtures are used by name
    PushService,
    Subscriber,
    push_service_factory_fixture,
    push_service_fixture,
)
from tests.portal import preferences_helpers as helpers
from tests.portal.preferences_helpers import csrf_token, events_of, sign_in

STATIC = Path(__file__).resolve().parents[2] / "static"


@pytest.fixture
def customers(session):
    return helpers.two_customers(session)


@pytest.fixture
def push_on(app, monkeypatch):
    """Web push configured, with plain-http endpoints allowed for the local push service."""
    settings = dataclasses.replace(app.config["HERALD"], vapid_subject="mailto:ops@herald.test",
                                   web_push_allow_http=True)
    monkeypatch.setitem(app.config, "HERALD", settings)
    return settings


@pytest.fixture
def alice_client(client, customers):
    sign_in(client, "alice@example.com")
    return client


def post_json(client, url: str, body, *, token: str | None) -> object:
    headers = {"X-CSRFToken": token} if token else {}
    return client.post(url, data=json.dumps(body), content_type="application/json",
                       headers=headers)


def test_the_public_key_comes_from_the_instance_keys(alice_client, push_on):
    response = alice_client.get("/preferences/push/key")
    assert response.status_code == 200
    assert response.json == {"enabled": True,
                             "publicKey": vapid_keys(push_on).public_key_b64url}


def test_without_a_vapid_subject_push_is_off_and_said_to_be(alice_client, app):
    assert app.config["HERALD"].vapid_subject is None
    assert alice_client.get("/preferences/push/key").json == {"enabled": False,
                                                              "publicKey": None}
    assert b"Notifications are not set up on this site yet." in \
        alice_client.get("/preferences").data


def test_subscribe_test_notification_and_unsubscribe_with_a_real_push_service(
        client, session, customers, push_on, push_service: PushService):
    alice, _bob = customers
    # The whole session in one browser: a sign-in ends when the user agent changes.
    client.environ_base["HTTP_USER_AGENT"] = \
        "Mozilla/5.0 (Linux; Android 14) Gecko/20100101 Firefox/125.0"
    sign_in(client, "alice@example.com")
    alice_client = client
    token = csrf_token(alice_client, "/preferences")
    key = alice_client.get("/preferences/push/key").json["publicKey"]
    # As a browser's pushManager.subscribe() would: a fresh P-256 key and auth secret.
    subscription = push_service.subscription(application_server_key=key)
    response = alice_client.post(
        "/preferences/push/subscriptions", data=json.dumps({**subscription,
                                                            "expirationTime": None}),
        content_type="application/json",
        headers={"X-CSRFToken": token})
    assert response.status_code == 201, response.data
    address = session.get(Address, response.json["id"])
    assert address.channel is ChannelName.WEB_PUSH and address.label == "Firefox on Android"
    assert address.recipient.recipient_key == recipient_key(alice)
    assert json.loads(address.value) == subscription  # exactly what was checked

    page = alice_client.get("/preferences").data.decode()
    assert "Firefox on Android" in page and 'id="push-controls"' in page
    assert "/static/js/push.js" in page

    sent = alice_client.post(f"/preferences/addresses/{address.id}/test",
                             data={"csrf_token": token})
    assert sent.status_code == 302 and sent.location.endswith("#push")
    [push] = push_service.received
    payload = push.json()
    assert payload["title"] == "Notifications are on"
    assert payload["body"] == "This is how Herald will tell you about new invoices."
    assert payload["url"].endswith("/preferences")
    assert push.claims["sub"] == "mailto:ops@herald.test"
    assert events_of(session, "web_push.test_sent", recipient_key(alice))

    off = post_json(alice_client, "/preferences/push/unsubscribe",
                    {"endpoint": subscription["endpoint"]}, token=token)
    assert off.status_code == 200 and off.json == {"removed": address.id}
    session.refresh(address)
    assert address.dead_reason == "removed by the customer"
    assert post_json(alice_client, "/preferences/push/unsubscribe",
                     {"endpoint": subscription["endpoint"]}, token=token).status_code == 404


def test_a_gone_subscription_is_marked_dead_when_the_test_finds_out(
        alice_client, session, push_on, push_service: PushService):
    token = csrf_token(alice_client, "/preferences")
    created = post_json(alice_client, "/preferences/push/subscriptions",
                        push_service.subscription(), token=token)
    push_service.fail_next(410)
    alice_client.post(f"/preferences/addresses/{created.json['id']}/test",
                      data={"csrf_token": token})
    address = session.get(Address, created.json["id"])
    assert address.dead_since is not None
    assert "subscription has ended" in alice_client.get("/preferences").data.decode()


@pytest.mark.parametrize(("subscription", "message"), [
    ({"endpoint": "http://push.example/x", "keys": {}}, "https"),
    ("not an object", "JSON object"),
])
def test_subscriptions_are_checked_before_they_are_stored(
        alice_client, session, app, monkeypatch, subscription, message):
    settings = dataclasses.replace(app.config["HERALD"], vapid_subject="mailto:ops@herald.test")
    monkeypatch.setitem(app.config, "HERALD", settings)  # https endpoints only
    response = post_json(alice_client, "/preferences/push/subscriptions", subscription,
                         token=csrf_token(alice_client, "/preferences"))
    assert response.status_code == 400 and message in response.json["error"]
    assert session.scalar(sa.select(sa.func.count()).select_from(Address).where(
        Address.channel == ChannelName.WEB_PUSH)) == 0


def test_keys_of_the_wrong_length_are_refused(alice_client, session, push_on):
    subscriber = Subscriber.generate()
    good = subscriber.subscription("https://push.example/abc")
    token = csrf_token(alice_client, "/preferences")
    short_auth = {**good, "keys": {**good["keys"], "auth": "AAAA"}}
    short_key = {**good, "keys": {**good["keys"], "p256dh": good["keys"]["p256dh"][:40]}}
    for bad, field in ((short_auth, "keys.auth"), (short_key, "keys.p256dh")):
        response = post_json(alice_client, "/preferences/push/subscriptions", bad, token=token)
        assert response.status_code == 400 and field in response.json["error"]
    assert post_json(alice_client, "/preferences/push/subscriptions", good,
                     token=token).status_code == 201


def test_json_posts_need_the_csrf_header(alice_client, session, push_on):
    subscription = Subscriber.generate().subscription("https://push.example/abc")
    response = post_json(alice_client, "/preferences/push/subscriptions", subscription,
                         token=None)
    assert response.status_code == 400
    assert session.scalar(sa.select(sa.func.count()).select_from(Address).where(
        Address.channel == ChannelName.WEB_PUSH)) == 0


def test_another_customers_browser_cannot_be_tested_or_removed(
        alice_client, session, customers, push_on):
    _alice, bob = customers
    bobs_recipient = sync_customer(session, bob, actor="test")
    from distribution.recipients import add_address

    bobs = add_address(session, bobs_recipient, ChannelName.WEB_PUSH,
                       json.dumps(Subscriber.generate().subscription("https://push.example/b")),
                       verified=True, actor="test")
    token = csrf_token(alice_client, "/preferences")
    for action in ("test", "remove"):
        assert alice_client.post(f"/preferences/addresses/{bobs.id}/{action}",
                                 data={"csrf_token": token}).status_code == 404
    assert post_json(alice_client, "/preferences/push/unsubscribe",
                     {"endpoint": "https://push.example/b"}, token=token).status_code == 404
    session.refresh(bobs)
    assert bobs.dead_since is None


def test_service_worker_is_served_for_the_whole_site(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["Service-Worker-Allowed"] == "/"
    assert response.mimetype == "text/javascript"
    assert "no-cache" in response.headers["Cache-Control"]
    script = response.data.decode()
    assert "addEventListener('push'" in script and "notificationclick" in script
    assert "openWindow" in script


def test_manifest_makes_the_portal_installable(client):
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    manifest = response.json
    assert manifest["display"] == "standalone" and manifest["start_url"].startswith("/")
    assert manifest["name"] and manifest["short_name"] and manifest["theme_color"]
    sizes = {(icon["sizes"], icon.get("purpose", "any")) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in manifest["icons"]:
        served = client.get(icon["src"])
        assert served.status_code == 200 and served.mimetype == icon["type"]
        served.close()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert zlib.crc32(data[12:29]) & 0xFFFFFFFF == struct.unpack(">I", data[29:33])[0]
    return struct.unpack(">II", data[16:24])


def test_icons_are_the_ones_our_code_draws():
    for name, (size, _maskable) in ICONS.items():
        assert _png_size((STATIC / "icons" / name).read_bytes()) == (size, size)
    # Drawing the small one again gives the committed file, byte for byte.
    assert render(192, maskable=False) == (STATIC / "icons" / "icon-192.png").read_bytes()


@pytest.mark.parametrize(("agent", "label"), [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "Safari on iPhone"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0 Safari/537.36 Edg/124.0", "Edge on Windows"),
    ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 "
     "Mobile Safari/537.36", "Chrome on Android"),
    ("curl/8.0", None),
])
def test_subscriptions_are_labelled_with_the_browser_people_recognise(agent, label):
    assert device_label(agent) == label
