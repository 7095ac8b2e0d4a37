"""Cross-check of the Web Push channel against npm's ``web-push-testing``, an independent peer.

It checks the VAPID signature against the subscription's applicationServerKey,
the TTL and the encoding, and decrypts the body with Node's ``http_ece``; it
does not check ``aud`` or ``exp`` (our own peer does). The package is found in
``$WEB_PUSH_TESTING_DIR`` or in the repository's ``node_modules``; without it,
or without Node 20+, these tests are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from distribution.channels.base import ChannelError, ErrorKind, OutgoingMessage
from distribution.channels.webpush import WebPushChannel
from distribution.vapid import VapidKeys
from tests.peers.ports import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
INSTALL_HINT = ("install it with `npm install` in the repository (devDependency web-push-testing) "
                "or point WEB_PUSH_TESTING_DIR at an installed copy")


def _package_dir() -> Path:
    configured = os.environ.get("WEB_PUSH_TESTING_DIR")
    candidate = Path(configured) if configured else REPO / "node_modules" / "web-push-testing"
    if not (candidate / "src" / "bin" / "server.js").is_file():
        pytest.skip(f"web-push-testing not found at {candidate}; {INSTALL_HINT}")
    return candidate


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH; web-push-testing needs Node.js 20 or later")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    major = version.stdout.strip().lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < 20:
        pytest.skip(f"web-push-testing needs Node.js 20 or later, found {version.stdout.strip()}")
    return node


class WebPushTesting:
    """A running web-push-testing server and its small JSON API."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _post(self, path: str, body: dict | None = None) -> requests.Response:
        return requests.post(f"{self.base_url}{path}", json=body, timeout=5)

    def subscribe(self, application_server_key: str) -> tuple[dict, str]:
        """A new subscription bound to our VAPID key, and its client hash."""
        response = self._post("/subscribe", {"applicationServerKey": application_server_key,
                                             "userVisibleOnly": "true"})
        response.raise_for_status()
        data = response.json()["data"]
        return {"endpoint": data["endpoint"], "keys": data["keys"]}, data["clientHash"]

    def notifications(self, client_hash: str) -> list[str]:
        """The decrypted messages the subscription received."""
        response = self._post("/get-notifications", {"clientHash": client_hash})
        response.raise_for_status()
        return response.json()["data"]["messages"]

    def expire(self, client_hash: str) -> None:
        """Make the subscription answer 410 from now on."""
        self._post(f"/expire-subscription/{client_hash}").raise_for_status()


@pytest.fixture(scope="module")
def web_push_testing() -> Iterator[WebPushTesting]:
    package, node = _package_dir(), _node()
    port = free_port()
    # Its server script directly, not `web-push-testing start`: that detaches the server and
    # keeps the pid in a node-persist folder in the working directory; this way we own the
    # process and end it ourselves.
    process = subprocess.Popen([node, str(package / "src" / "bin" / "server.js"), str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    service = WebPushTesting(f"http://localhost:{port}")
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                pytest.fail(f"web-push-testing exited: {process.stderr.read().decode()[-500:]}")
            try:
                if service._post("/status").status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("web-push-testing did not start within 15 s")
            time.sleep(0.1)
        yield service
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()


@pytest.fixture(scope="module")
def keys() -> VapidKeys:
    return VapidKeys.generate()


@pytest.fixture
def channel(keys: VapidKeys) -> Iterator[WebPushChannel]:
    channel = WebPushChannel(keys, "https://herald.example", timeout=5, allow_http=True)
    yield channel
    channel.close()


def _message(subscription: dict, text: str = "Invoice 2026-0042 is ready") -> OutgoingMessage:
    return OutgoingMessage(
        delivery_id=7, idempotency_key="delivery-7", message_type="invoice",
        address=json.dumps(subscription), recipient_name="Ada", language="en",
        subject="Your invoice", text=text, link="https://herald.example/i/7",
        data={"invoice": "2026-0042"})


def test_web_push_testing_verifies_and_decrypts_what_we_send(web_push_testing, channel, keys):
    subscription, client_hash = web_push_testing.subscribe(keys.public_key_b64url)

    receipt = channel.send(_message(subscription))
    channel.send(_message(subscription, text="second"))

    assert receipt.detail["status"] == 201
    messages = [json.loads(m) for m in web_push_testing.notifications(client_hash)]
    assert messages == [
        {"title": "Your invoice", "body": "Invoice 2026-0042 is ready",
         "url": "https://herald.example/i/7", "tag": "delivery-7",
         "data": {"invoice": "2026-0042"}},
        {"title": "Your invoice", "body": "second", "url": "https://herald.example/i/7",
         "tag": "delivery-7", "data": {"invoice": "2026-0042"}},
    ]


def test_web_push_testing_refuses_another_vapid_key(web_push_testing, channel):
    subscription, _ = web_push_testing.subscribe(VapidKeys.generate().public_key_b64url)
    with pytest.raises(ChannelError) as err:
        channel.send(_message(subscription))
    assert err.value.kind is ErrorKind.PERMANENT
    assert "400" in err.value.reason


def test_web_push_testing_expired_subscription_is_address_dead(web_push_testing, channel, keys):
    subscription, client_hash = web_push_testing.subscribe(keys.public_key_b64url)
    web_push_testing.expire(client_hash)
    with pytest.raises(ChannelError) as err:
        channel.send(_message(subscription))
    assert err.value.kind is ErrorKind.ADDRESS_DEAD
    assert "410" in err.value.reason
