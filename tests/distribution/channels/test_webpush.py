"""The Web Push channel against a real push service that verifies VAPID and decrypts."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from distribution.channels.base import ChannelError, ErrorKind, OutgoingMessage
from distribution.channels.webpush import (
    MAX_PAYLOAD_BYTES,
    WebPushChannel,
    build_payload,
    parse_retry_after,
    topic_for,
)
from distribution.vapid import (
    VAPID_KEY_FILENAME,
    VapidKeyError,
    VapidKeys,
    load_or_create_vapid_keys,
)
from tests.peers.webpush_service import (  # noqa: F401 - the fixtures are used by name
    PushService,
    Subscriber,
    push_service_factory_fixture,
    push_service_fixture,
)

SUBJECT = "mailto:ops@herald.example"


@pytest.fixture(scope="module")
def keys() -> VapidKeys:
    return VapidKeys.generate()


@pytest.fixture
def channel(keys):
    channel = WebPushChannel(keys, SUBJECT, timeout=2, allow_http=True)
    yield channel
    channel.close()


def make_message(subscription: dict, *, key: str = "delivery-42", text: str = "Invoice 2026-0042",
                 link: str | None = "https://herald.example/i/abc123") -> OutgoingMessage:
    return OutgoingMessage(
        delivery_id=42, idempotency_key=key, message_type="invoice",
        address=json.dumps(subscription), recipient_name="Ada", language="en",
        subject="Your invoice is ready", text=text, link=link,
        data={"invoice": "2026-0042", "amount": "120.00 EUR"})


def test_payload_arrives_decrypted_and_signed(push_service: PushService, channel, keys):
    sub = push_service.subscription("ada", application_server_key=keys.public_key_b64url)
    before = time.time()

    receipt = channel.send(make_message(sub))

    assert push_service.rejected == []
    [push] = push_service.received
    assert push.json() == {
        "title": "Your invoice is ready", "body": "Invoice 2026-0042",
        "url": "https://herald.example/i/abc123", "tag": "delivery-42",
        "data": {"invoice": "2026-0042", "amount": "120.00 EUR"}}
    assert push.claims["aud"] == push_service.origin
    assert push.claims["sub"] == SUBJECT
    assert before < push.claims["exp"] <= before + 24 * 3600
    assert push.vapid_key == keys.public_key_b64url
    assert push.headers["urgency"] == "normal"
    assert push.headers["ttl"] == "86400"
    assert push.headers["content-encoding"] == "aes128gcm"
    assert receipt.provider_message_id.startswith(f"{push_service.origin}/message/")
    assert receipt.detail["topic"] == "delivery-42"


def test_each_origin_gets_its_own_aud(push_service_factory, channel):
    first, second = push_service_factory(), push_service_factory()
    assert first.origin != second.origin

    for service in (first, second, first):
        channel.send(make_message(service.subscription()))

    assert first.rejected == [] and second.rejected == []
    assert [p.claims["aud"] for p in first.received] == [first.origin] * 2
    assert [p.claims["aud"] for p in second.received] == [second.origin]


def test_the_peer_refuses_a_stale_aud(push_service_factory, keys):
    """Why the channel builds fresh claims: pywebpush writes ``aud`` into a shared dict."""
    first, second = push_service_factory(), push_service_factory()
    shared_claims = {"sub": SUBJECT}
    vapid = Vapid(private_key=keys.private_key)
    webpush(first.subscription(), "one", vapid_private_key=vapid, vapid_claims=shared_claims,
            timeout=2, headers={"Content-Type": "application/octet-stream"})
    with pytest.raises(WebPushException) as err:
        webpush(second.subscription(), "two", vapid_private_key=vapid, vapid_claims=shared_claims,
                timeout=2)
    assert err.value.status_code == 401
    assert second.rejected == [(401, f"aud {first.origin!r} is not {second.origin!r}")]


def test_topic_is_short_urlsafe_and_stable(push_service: PushService, channel):
    long_key = "invoice:2026-0042/customer:ACME Corp/channel:web_push/attempt-group:7"
    sub = push_service.subscription()

    channel.send(make_message(sub, key=long_key))
    channel.send(make_message(sub, key=long_key))

    topics = [p.headers["topic"] for p in push_service.received]
    assert topics[0] == topics[1] == topic_for(long_key)
    assert len(topics[0]) == 32
    assert set(topics[0]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert topic_for("other" + long_key) != topics[0]
    assert topic_for("d-42_ok") == "d-42_ok"


@pytest.mark.parametrize("status", [404, 410])
def test_gone_subscription_is_address_dead(push_service: PushService, channel, status):
    push_service.fail_next(status, body="subscription expired")
    with pytest.raises(ChannelError) as err:
        channel.send(make_message(push_service.subscription()))
    assert err.value.kind is ErrorKind.ADDRESS_DEAD
    assert str(status) in err.value.reason and "subscription expired" in err.value.reason


def test_unknown_subscription_at_the_service_is_address_dead(push_service: PushService, channel):
    sub = push_service.subscription()
    sub["endpoint"] = sub["endpoint"].replace("/push/", "/push/unknown-")
    with pytest.raises(ChannelError) as err:
        channel.send(make_message(sub))
    assert err.value.kind is ErrorKind.ADDRESS_DEAD


def test_413_is_permanent(push_service: PushService, channel):
    push_service.fail_next(413)
    with pytest.raises(ChannelError) as err:
        channel.send(make_message(push_service.subscription()))
    assert err.value.kind is ErrorKind.PERMANENT
    assert "too large" in err.value.reason


@pytest.mark.parametrize("retry_after", ["120", None])
def test_429_is_retryable_with_retry_after(push_service: PushService, channel, retry_after):
    push_service.fail_next(429, retry_after=retry_after)
    with pytest.raises(ChannelError) as err:
        channel.send(make_message(push_service.subscription()))
    assert err.value.kind is ErrorKind.RETRYABLE
    assert err.value.retry_after == (120.0 if retry_after else None)


def test_500_is_retryable_and_the_next_send_succeeds(push_service: PushService, channel):
    sub = push_service.subscription()
    push_service.fail_next(500, retry_after=7)
    with pytest.raises(ChannelError) as err:
        channel.send(make_message(sub))
    assert err.value.kind is ErrorKind.RETRYABLE
    assert err.value.retry_after == 7.0
    channel.send(make_message(sub))
    assert len(push_service.received) == 1


def test_wrong_vapid_key_is_permanent_with_reason(push_service: PushService, channel):
    sub = push_service.subscription(application_server_key=VapidKeys.generate().public_key_b64url)
    with pytest.raises(ChannelError) as err:
        channel.send(make_message(sub))
    assert err.value.kind is ErrorKind.PERMANENT
    assert "403" in err.value.reason and "applicationServerKey" in err.value.reason


def test_closed_port_is_retryable_within_the_timeout(keys):
    with socket.socket() as sock:  # bind and close: the port is then almost surely closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    channel = WebPushChannel(keys, SUBJECT, timeout=2, allow_http=True)
    address = Subscriber.generate().subscription(f"http://127.0.0.1:{port}/push/x")
    started = time.monotonic()
    with pytest.raises(ChannelError) as err:
        channel.send(make_message(address))
    assert err.value.kind is ErrorKind.RETRYABLE
    assert time.monotonic() - started < 2
    channel.close()


def test_stalled_service_times_out_as_retryable(push_service: PushService, keys):
    channel = WebPushChannel(keys, SUBJECT, timeout=0.5, allow_http=True)
    push_service.stall_next(5)
    started = time.monotonic()
    with pytest.raises(ChannelError) as err:
        channel.send(make_message(push_service.subscription()))
    assert err.value.kind is ErrorKind.RETRYABLE
    assert "timed out" in err.value.reason
    assert time.monotonic() - started < 2
    channel.close()


def test_very_long_body_is_truncated_never_the_url(push_service: PushService, channel):
    link = "https://herald.example/i/" + "x" * 400
    text = "Zahlung fällig – " * 2000  # non-ASCII and escapes make bytes per character uneven

    channel.send(make_message(push_service.subscription(), text=text, link=link))

    [push] = push_service.received
    assert len(push.payload) <= MAX_PAYLOAD_BYTES
    body = push.json()
    assert body["url"] == link
    assert body["body"].endswith("…") and text.startswith(body["body"][:-1])
    assert len(push.payload) > MAX_PAYLOAD_BYTES - 40  # truncated to fit, not cut to nothing


def test_payload_too_large_without_body_is_permanent():
    message = make_message({}, link="https://herald.example/" + "x" * 4000)
    with pytest.raises(ChannelError) as err:
        build_payload(message)
    assert err.value.kind is ErrorKind.PERMANENT


@pytest.mark.parametrize("address", [
    "not json",
    "[]",
    json.dumps({"keys": {"p256dh": "x", "auth": "y"}}),
    json.dumps({"endpoint": "ftp://push.example/x", "keys": {}}),
    json.dumps({"endpoint": "https://push.example/x"}),
    json.dumps({"endpoint": "https://push.example/x", "keys": {"p256dh": "AAAA", "auth": "AAAA"}}),
])
def test_malformed_subscription_is_address_dead(channel, address):
    message = OutgoingMessage(delivery_id=1, idempotency_key="k", message_type="invoice",
                              address=address, recipient_name="A", language="en",
                              subject="s", text="t")
    with pytest.raises(ChannelError) as err:
        channel.send(message)
    assert err.value.kind is ErrorKind.ADDRESS_DEAD
    assert "malformed push subscription" in err.value.reason


def test_http_endpoints_are_refused_unless_allowed(push_service: PushService, keys):
    channel = WebPushChannel(keys, SUBJECT)
    with pytest.raises(ChannelError) as err:
        channel.send(make_message(push_service.subscription()))
    assert err.value.kind is ErrorKind.ADDRESS_DEAD
    assert push_service.requests == 0


def test_bad_subject_fails_at_construction(keys):
    with pytest.raises(ValueError, match="VAPID subject"):
        WebPushChannel(keys, "ops@herald.example")


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT",
                             now=1792567620.0) == pytest.approx(60.0)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_vapid_keys_persist_with_mode_0600_and_reload(tmp_path):
    instance = tmp_path / "instance"
    first = load_or_create_vapid_keys(instance)
    path = instance / VAPID_KEY_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_vapid_keys(instance)
    assert again.public_key_b64url == first.public_key_b64url
    assert len(first.public_key_b64url) == 87  # 65 bytes, unpadded base64url
    assert list(instance.iterdir()) == [path]  # no temporary files left behind


def test_vapid_keys_from_configuration_win_and_are_not_written(tmp_path):
    configured = VapidKeys.generate()
    keys = load_or_create_vapid_keys(tmp_path, configured.private_key_pem)
    assert keys.public_key_b64url == configured.public_key_b64url
    assert not (tmp_path / VAPID_KEY_FILENAME).exists()
    with pytest.raises(VapidKeyError):
        load_or_create_vapid_keys(tmp_path, b"-----BEGIN PRIVATE KEY-----\nnope\n")



def test_vapid_key_file_is_0600_even_under_a_permissive_umask(tmp_path):
    previous = os.umask(0)
    try:
        load_or_create_vapid_keys(tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / VAPID_KEY_FILENAME).stat().st_mode) == 0o600


def test_concurrent_first_runs_agree_on_one_key(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: load_or_create_vapid_keys(tmp_path), range(8)))
    assert len({keys.public_key_b64url for keys in results}) == 1
