"""Behind a reverse proxy: ``herald serve`` (waitress) with ``TRUSTED_PROXIES`` takes the
client from ``X-Forwarded-For``, so sign-in evidence, rate limits and the loopback rule of
``/metrics`` see the real client, and nobody else can forge it.

The test plays the proxy: it connects from 127.0.0.1 to a real ``herald serve`` process
and sets the headers a proxy sets. Settings parsing and the WSGI wrapper are checked
without a server.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from distribution.events import Event
from portal.config import ConfigError, Settings
from portal.db import make_engine
from portal.migrate import upgrade
from portal.proxy import ProxySettings, TrustedProxyFix, client_resolved, waitress_options

HERALD = Path(sys.executable).with_name("herald")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served:
    """A ``herald serve`` process and its database."""

    def __init__(self, url: str, base: str, process: subprocess.Popen) -> None:
        self.url, self.base, self.process = url, base, process

    def get(self, path: str, client: str | None = None, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if client is not None:  # what a proxy in front adds
            headers["X-Forwarded-For"] = client
        return requests.get(self.base + path, headers=headers, timeout=10, **kwargs)


def serve(databases, tmp_path: Path, **settings: str) -> Iterator[Served]:
    url = databases.new_url()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HERALD_", "DATABASE_URL", "METRICS_", "TRUSTED_PROXIES",
                                "PROXY_FIX_", "HUEY_"))}
    env.update({"DATABASE_URL": url, "HERALD_INSTANCE_PATH": str(tmp_path / "instance"),
                **settings})
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen([str(HERALD), "serve", "--port", str(port)], env=env,
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    served = Served(url, f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                served.get("/healthz")
                break
            except requests.ConnectionError:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "herald serve did not start"
                time.sleep(0.2)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def behind_proxy(databases, tmp_path) -> Iterator[Served]:
    """``herald serve`` told that 127.0.0.1 is its proxy, loopback scrapes allowed."""
    yield from serve(databases, tmp_path, TRUSTED_PROXIES="127.0.0.1",
                     METRICS_ALLOW_LOOPBACK="true")


def failed_sign_in_ip(served: Served, client: str | None) -> str:
    """Fail a password sign-in through the 'proxy'; the IP the evidence recorded."""
    session = requests.Session()
    headers = {"X-Forwarded-For": client} if client else {}
    page = session.get(served.base + "/sign-in", headers=headers, timeout=10)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    answer = session.post(served.base + "/sign-in", headers=headers, timeout=10, data={
        "csrf_token": token, "email": "nobody@example.com", "password": "not the password"})
    assert answer.status_code == 200, answer.text[:500]
    engine = make_engine(served.url)
    try:
        with engine.connect() as connection:
            payload = connection.scalar(sa.select(Event.payload).where(
                Event.kind == "auth.sign_in_failed").order_by(Event.id.desc()).limit(1))
    finally:
        engine.dispose()
    return payload["ip"]


def test_the_real_client_is_recorded_and_judged(behind_proxy):
    assert failed_sign_in_ip(behind_proxy, "203.0.113.9") == "203.0.113.9"
    # Two proxies' worth of addresses: one hop is trusted, the client is the last one added.
    assert failed_sign_in_ip(behind_proxy, "198.51.100.7, 203.0.113.10") == "203.0.113.10"

    # /metrics: loopback means the real client, not the proxy on the same host.
    assert behind_proxy.get("/metrics", client="203.0.113.9").status_code == 404
    assert behind_proxy.get("/metrics", client="127.0.0.1").status_code == 200
    # A proxy that did not name its client: the client is unknown, so refused.
    assert behind_proxy.get("/metrics").status_code == 404


def test_without_proxy_settings_forged_headers_change_nothing(databases, tmp_path):
    for served in serve(databases, tmp_path, METRICS_ALLOW_LOOPBACK="true"):
        # Waitress drops the forwarding headers, so the peer (here loopback) is the client.
        assert failed_sign_in_ip(served, "203.0.113.9") == "127.0.0.1"
        assert served.get("/metrics", client="203.0.113.9").status_code == 200
        # And /metrics stays closed to loopback unless METRICS_ALLOW_LOOPBACK says otherwise.
    for served in serve(databases, tmp_path / "closed"):
        assert served.get("/metrics").status_code == 404


# -- settings and the wrapper, without a server -------------------------------------------
def test_settings_from_the_environment(tmp_path):
    assert not Settings.from_env(tmp_path, {}).proxy.enabled
    listed = Settings.from_env(tmp_path, {"TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/24"}).proxy
    assert (listed.x_for, listed.x_proto, listed.x_host) == (1, 1, 0)
    assert listed.is_trusted("10.0.0.77") and listed.is_trusted("::ffff:127.0.0.1")
    assert not listed.is_trusted("10.0.1.1") and not listed.is_trusted("unknown")
    counted = Settings.from_env(tmp_path, {"PROXY_FIX_X_FOR": "2", "PROXY_FIX_X_HOST": "1"})
    assert (counted.proxy.x_for, counted.proxy.x_host, counted.proxy.trusted) == (2, 1, ())
    assert waitress_options(counted.proxy) == {"clear_untrusted_proxy_headers": False}
    assert waitress_options(ProxySettings()) == {}
    with pytest.raises(ConfigError, match=r"TRUSTED_PROXIES: 'proxy\.local'"):
        Settings.from_env(tmp_path, {"TRUSTED_PROXIES": "proxy.local"})
    with pytest.raises(ConfigError, match="PROXY_FIX_X_FOR='one'"):
        Settings.from_env(tmp_path, {"PROXY_FIX_X_FOR": "one"})
    assert not Settings.from_env(tmp_path, {}).metrics_allow_loopback
    assert Settings.from_env(tmp_path, {"METRICS_ALLOW_LOOPBACK": "yes"}).metrics_allow_loopback


def test_only_a_listed_proxy_is_believed():
    seen: list[dict] = []

    def app(environ, start_response):
        seen.append({"addr": environ["REMOTE_ADDR"], "scheme": environ["wsgi.url_scheme"],
                     "resolved": client_resolved(environ)})
        return []

    wrapped = TrustedProxyFix(app, ProxySettings(x_for=1, x_proto=1, trusted=tuple(
        ProxySettings.from_env({"TRUSTED_PROXIES": "10.0.0.5"}).trusted)))

    def call(peer: str, **headers: str) -> dict:
        environ = {"REMOTE_ADDR": peer, "wsgi.url_scheme": "http", "REQUEST_METHOD": "GET",
                   "PATH_INFO": "/", "SERVER_NAME": "herald", "SERVER_PORT": "80",
                   **{f"HTTP_{k.upper()}": v for k, v in headers.items()}}
        wrapped(environ, lambda *a: None)
        return seen[-1]

    assert call("10.0.0.5", x_forwarded_for="203.0.113.9", x_forwarded_proto="https") == {
        "addr": "203.0.113.9", "scheme": "https", "resolved": True}
    assert call("198.51.100.1", x_forwarded_for="127.0.0.1", x_forwarded_proto="https") == {
        "addr": "198.51.100.1", "scheme": "http", "resolved": None}  # not a proxy: ignored
    assert call("10.0.0.5") == {"addr": "10.0.0.5", "scheme": "http", "resolved": False}
