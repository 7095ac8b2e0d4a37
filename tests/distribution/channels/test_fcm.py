"""FcmChannel against a local FCM v1 peer, through the real firebase-admin and google-auth."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterator

import pytest
from firebase_admin import messaging

from distribution.channels.base import ChannelError, ErrorKind, OutgoingMessage
from distribution.channels.fcm import (
    DATA_DELIVERY_ID,
    DATA_LINK,
    DATA_MESSAGE_TYPE,
    FcmChannel,
    FcmConfigError,
    FcmSettings,
    collapse_id,
)
from tests.peers.fcm_server import FcmServer, fcm_server  # noqa: F401 - fixture

# firebase-admin 7.7 deprecates Message.token in favour of Message.fid (Firebase
# installation IDs); Herald's addresses are still registration tokens.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Message.token is deprecated:DeprecationWarning")

TOKEN = "dGVzdC1kZXZpY2U:APA91bHerald-test-registration-token_0123456789"


def outgoing(**overrides: object) -> OutgoingMessage:
    fields: dict[str, object] = {
        "delivery_id": 4711,
        "idempotency_key": "delivery-4711-fcm-attempt-independent",
        "message_type": "invoice",
        "address": TOKEN,
        "recipient_name": "Ada Lovelace",
        "language": "en",
        "subject": "Invoice INV-2024-001",
        "text": "Your invoice of EUR 120.00 is ready.",
        "link": "https://herald.example/i/abc123",
        "data": {"invoice_number": "INV-2024-001"},
    }
    fields.update(overrides)
    return OutgoingMessage(**fields)  # type: ignore[arg-type]


@pytest.fixture
def channel(fcm_server: FcmServer) -> Iterator[FcmChannel]:  # noqa: F811
    with FcmChannel(fcm_server.service_account_info(), app_name="herald-test",
                    timeout=2, fcm_url=fcm_server.url) as channel:
        yield channel


def send_error(channel: FcmChannel, message: OutgoingMessage | None = None) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        channel.send(message or outgoing())
    return caught.value


def test_peer_receives_token_notification_data_and_collapse_key(
        channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    receipt = channel.send(outgoing())

    [received] = fcm_server.received
    assert receipt.provider_message_id == received.name
    assert receipt.provider_message_id.startswith("projects/herald-test/messages/")
    message = received.message
    assert message["token"] == TOKEN
    assert message["notification"] == {"title": "Invoice INV-2024-001",
                                       "body": "Your invoice of EUR 120.00 is ready."}
    assert message["data"] == {
        DATA_LINK: "https://herald.example/i/abc123",
        DATA_MESSAGE_TYPE: "invoice",
        DATA_DELIVERY_ID: "4711",
        "invoice_number": "INV-2024-001",
    }
    key = collapse_id("delivery-4711-fcm-attempt-independent")
    assert len(key) == 32
    assert message["android"]["collapse_key"] == key
    assert message["android"]["priority"] == "normal"
    assert message["android"]["ttl"] == f"{7 * 24 * 3600}s"
    assert message["android"]["notification"]["tag"] == key
    headers = message["apns"]["headers"]
    assert headers["apns-collapse-id"] == key
    assert headers["apns-priority"] == "5"
    assert int(headers["apns-expiration"]) > time.time()
    assert "webpush" not in message
    assert received.headers["authorization"].startswith("Bearer ya29.peer-")
    assert fcm_server.rejected == []


def test_same_idempotency_key_gives_same_collapse_key(
        channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    channel.send(outgoing())
    channel.send(outgoing(delivery_id=4711))
    other = channel.send(outgoing(idempotency_key="delivery-4712"))

    keys = [m.message["android"]["collapse_key"] for m in fcm_server.received]
    assert keys[0] == keys[1] != keys[2]
    assert other.detail["collapse_key"] == keys[2]


def test_oauth_token_comes_from_local_endpoint_and_is_reused(
        channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    channel.send(outgoing())
    channel.send(outgoing(delivery_id=4712, idempotency_key="k2"))

    [claims] = fcm_server.token_requests  # one exchange for two sends
    assert claims["iss"].endswith("@herald-test.iam.gserviceaccount.com")
    assert "https://www.googleapis.com/auth/cloud-platform" in claims["scope"].split()
    first, second = (m.headers["authorization"] for m in fcm_server.received)
    assert first == second


def test_expired_token_is_fetched_again(channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    channel.send(outgoing())
    fcm_server.revoke_tokens()  # the peer now answers 401, google-auth refreshes once

    channel.send(outgoing(idempotency_key="k2"))

    assert len(fcm_server.token_requests) == 2
    assert len(fcm_server.received) == 2


def test_message_without_link_has_no_link_key(channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    channel.send(outgoing(link=None, data={}))

    assert fcm_server.received[0].message["data"] == {DATA_MESSAGE_TYPE: "invoice",
                                                      DATA_DELIVERY_ID: "4711"}


def test_unregistered_token_is_address_dead(channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    fcm_server.fail_next("UNREGISTERED")

    error = send_error(channel)

    assert isinstance(error.__cause__, messaging.UnregisteredError)
    assert error.kind is ErrorKind.ADDRESS_DEAD
    assert error.reason.startswith("FCM UNREGISTERED")
    assert error.detail == {"fcm_error_code": "UNREGISTERED", "http_status": 404}


def test_sender_id_mismatch_is_address_dead(channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    fcm_server.fail_next("SENDER_ID_MISMATCH")

    error = send_error(channel)

    assert isinstance(error.__cause__, messaging.SenderIdMismatchError)
    assert error.kind is ErrorKind.ADDRESS_DEAD


def test_invalid_argument_is_permanent(channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    fcm_server.fail_next("INVALID_ARGUMENT")

    error = send_error(channel)

    assert error.kind is ErrorKind.PERMANENT
    assert error.reason.startswith("FCM INVALID_ARGUMENT")
    assert error.retry_after is None


def test_invalid_registration_token_is_address_dead(
        channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    fcm_server.fail_next("INVALID_TOKEN")

    error = send_error(channel)

    assert error.kind is ErrorKind.ADDRESS_DEAD
    assert error.reason.startswith("FCM INVALID_ARGUMENT")


def test_blank_token_is_address_dead_without_a_request(
        channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    error = send_error(channel, outgoing(address=""))

    assert error.kind is ErrorKind.ADDRESS_DEAD
    assert fcm_server.send_attempts == []


def test_reserved_data_key_is_permanent(channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    error = send_error(channel, outgoing(data={"google.sent_time": "1"}))

    assert error.kind is ErrorKind.PERMANENT
    assert fcm_server.send_attempts == []


def test_quota_exceeded_is_retryable_with_retry_after(
        channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    fcm_server.fail_next("QUOTA_EXCEEDED", retry_after="42")

    error = send_error(channel)

    assert isinstance(error.__cause__, messaging.QuotaExceededError)
    assert error.kind is ErrorKind.RETRYABLE
    assert error.retry_after == 42
    assert error.reason.startswith("FCM QUOTA_EXCEEDED")
    assert len(fcm_server.send_attempts) == 1


def test_retry_after_as_http_date(channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    fcm_server.fail_next("QUOTA_EXCEEDED", retry_after=in_a_minute)

    error = send_error(channel)

    assert 55 <= error.retry_after <= 60


def test_unavailable_is_retryable_once_without_hidden_retries(
        channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    # firebase-admin alone would retry a 503 four times and sleep for its
    # Retry-After; the channel leaves retrying to the engine.
    fcm_server.fail_next("UNAVAILABLE", retry_after="30")
    started = time.monotonic()

    error = send_error(channel)

    assert error.kind is ErrorKind.RETRYABLE
    assert error.retry_after == 30
    assert error.reason.startswith("FCM UNAVAILABLE")
    assert len(fcm_server.send_attempts) == 1
    assert time.monotonic() - started < 2
    channel.send(outgoing())  # the next attempt goes through
    assert len(fcm_server.received) == 1


def test_internal_error_is_retryable(channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    fcm_server.fail_next("INTERNAL")

    error = send_error(channel)

    assert error.kind is ErrorKind.RETRYABLE
    assert error.retry_after is None
    assert len(fcm_server.send_attempts) == 1


def test_third_party_auth_error_is_permanent(channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    # FCM sends it as a 401, so google-auth refreshes the token and tries again
    # (twice at most) before firebase-admin sees it.
    fcm_server.fail_next("THIRD_PARTY_AUTH_ERROR", times=3)

    error = send_error(channel)

    assert isinstance(error.__cause__, messaging.ThirdPartyAuthError)
    assert error.kind is ErrorKind.PERMANENT
    assert error.reason.startswith("FCM THIRD_PARTY_AUTH_ERROR")
    assert len(fcm_server.send_attempts) == 3
    assert len(fcm_server.token_requests) == 3


def test_timeout_is_retryable(fcm_server: FcmServer) -> None:  # noqa: F811
    with FcmChannel(fcm_server.service_account_info(), app_name="herald-timeout",
                    timeout=0.3, fcm_url=fcm_server.url) as channel:
        fcm_server.delay_next(1.0)

        error = send_error(channel)

    assert error.kind is ErrorKind.RETRYABLE
    assert error.reason.startswith("FCM DEADLINE_EXCEEDED")


def test_server_down_before_first_token_is_retryable(
        channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    fcm_server.stop()

    error = send_error(channel)

    assert error.kind is ErrorKind.RETRYABLE
    assert "token endpoint" in error.reason


def test_server_down_after_token_is_retryable(
        channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    channel.send(outgoing())
    fcm_server.stop()

    error = send_error(channel)

    assert error.kind is ErrorKind.RETRYABLE
    assert error.reason.startswith("FCM UNAVAILABLE")


def test_unknown_service_account_is_permanent(fcm_server: FcmServer) -> None:  # noqa: F811
    info = fcm_server.service_account_info()
    info["client_email"] = "stranger@herald-test.iam.gserviceaccount.com"
    with FcmChannel(info, app_name="herald-stranger", fcm_url=fcm_server.url) as channel:
        error = send_error(channel)

    assert error.kind is ErrorKind.PERMANENT
    assert "token refused" in error.reason
    assert fcm_server.send_attempts == []


def test_two_channels_in_one_process_keep_apart(fcm_server: FcmServer) -> None:  # noqa: F811
    with FcmChannel(fcm_server.service_account_info("project-a"), app_name="herald-a",
                    fcm_url=fcm_server.url) as a, \
         FcmChannel(fcm_server.service_account_info("project-b"), app_name="herald-b",
                    fcm_url=fcm_server.url) as b:
        receipt_a = a.send(outgoing())
        receipt_b = b.send(outgoing())

    assert receipt_a.provider_message_id.startswith("projects/project-a/messages/")
    assert receipt_b.provider_message_id.startswith("projects/project-b/messages/")
    assert [m.project for m in fcm_server.received] == ["project-a", "project-b"]
    assert len(fcm_server.token_requests) == 2
    # The per-instance URL left firebase-admin's global default alone.
    assert messaging._MessagingService.FCM_URL.startswith("https://fcm.googleapis.com/")


def test_app_name_taken_is_a_clear_error(channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    with pytest.raises(FcmConfigError, match=r"herald-test.*already exists"):
        FcmChannel(fcm_server.service_account_info(), app_name="herald-test")


def test_closed_channel_frees_its_app_name(fcm_server: FcmServer) -> None:  # noqa: F811
    info = fcm_server.service_account_info()
    FcmChannel(info, app_name="herald-reuse", fcm_url=fcm_server.url).close()
    with FcmChannel(info, app_name="herald-reuse", fcm_url=fcm_server.url) as again:
        again.send(outgoing())
    assert len(fcm_server.received) == 1


def test_firebase_admin_internals_we_rely_on_still_exist(channel: FcmChannel) -> None:
    # An upgrade that renames these must fail here, not send to the wrong place.
    assert messaging._MessagingService.FCM_URL == (
        "https://fcm.googleapis.com/v1/projects/{0}/messages:send")
    service = messaging._get_messaging_service(channel._app)
    assert service._fcm_url == channel.send_url
    assert channel.send_url.endswith("/v1/projects/herald-test/messages:send")
    assert hasattr(service._client, "session")


def test_default_url_is_googles(fcm_server: FcmServer) -> None:  # noqa: F811
    with FcmChannel(fcm_server.service_account_info(), app_name="herald-default") as channel:
        assert channel.send_url == (
            "https://fcm.googleapis.com/v1/projects/herald-test/messages:send")


# -- configuration --

def test_settings_from_env(tmp_path, fcm_server: FcmServer) -> None:  # noqa: F811
    key_file = tmp_path / "sa.json"
    key_file.write_text(json.dumps(fcm_server.service_account_info()))

    settings = FcmSettings.from_env({"FCM_SERVICE_ACCOUNT_FILE": str(key_file),
                                     "FCM_TIMEOUT": "4.5"})

    assert settings == FcmSettings(service_account_file=key_file, timeout=4.5)
    with FcmChannel.from_settings(settings, app_name="herald-env",
                                  fcm_url=fcm_server.url) as channel:
        channel.send(outgoing())
    assert len(fcm_server.received) == 1


@pytest.mark.parametrize(("environ", "match"), [
    ({}, "FCM_SERVICE_ACCOUNT_FILE is not set"),
    ({"FCM_SERVICE_ACCOUNT_FILE": "/nonexistent/sa.json"}, "does not exist"),
])
def test_settings_missing_file(environ: dict[str, str], match: str) -> None:
    with pytest.raises(FcmConfigError, match=match):
        FcmSettings.from_env(environ)


@pytest.mark.parametrize(("content", "match"), [
    ("not json", "not readable JSON"),
    ("[]", "not a JSON object"),
    ('{"type": "service_account"}', "lacks project_id, private_key, client_email"),
    (json.dumps({"type": "authorized_user", "project_id": "p", "private_key": "k",
                 "client_email": "e", "token_uri": "t"}), "expected 'service_account'"),
])
def test_settings_bad_file(tmp_path, content: str, match: str) -> None:
    key_file = tmp_path / "sa.json"
    key_file.write_text(content)
    with pytest.raises(FcmConfigError, match=match):
        FcmSettings.from_env({"FCM_SERVICE_ACCOUNT_FILE": str(key_file)})


def test_settings_bad_timeout(tmp_path, fcm_server: FcmServer) -> None:  # noqa: F811
    key_file = tmp_path / "sa.json"
    key_file.write_text(json.dumps(fcm_server.service_account_info()))
    for value in ("soon", "0"):
        with pytest.raises(FcmConfigError, match="FCM_TIMEOUT"):
            FcmSettings.from_env({"FCM_SERVICE_ACCOUNT_FILE": str(key_file),
                                  "FCM_TIMEOUT": value})


def test_google_auth_side_lookup_stays_local(channel: FcmChannel, fcm_server: FcmServer) -> None:  # noqa: F811
    # google-auth looks up a "regional access boundary" in a background thread
    # after a token refresh; the fixture redirects it here. If this fails after an
    # upgrade, the redirect no longer works and tests may be calling Google.
    channel.send(outgoing())
    deadline = time.monotonic() + 3
    while not fcm_server.boundary_lookups and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fcm_server.boundary_lookups == [fcm_server.token_requests[0]["iss"]]
