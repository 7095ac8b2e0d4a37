"""The production web settings (portal/gunicorn_config.py) under a real gunicorn.

What they are for: a client that keeps its connection open between requests, or that
opens one and waits before sending, must not hold the server up for anyone else.
"""

from __future__ import annotations

import http.client
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.peers.ports import free_port

pytest.importorskip("gunicorn")

ROOT = Path(__file__).resolve().parents[2]
PAGE = "/static/herald.css"


@pytest.fixture
def gunicorn(tmp_path):
    """gunicorn with Herald's settings, one process of two threads, on a free port."""
    port = free_port()
    env = {**os.environ, "HERALD_INSTANCE_PATH": str(tmp_path), "SECRET_KEY":
           secrets.token_hex(16), "DATABASE_URL": f"sqlite:///{tmp_path / 'herald.sqlite3'}",
           "WEB_CONCURRENCY": "1", "HERALD_WEB_THREADS": "2",
           "HERALD_BIND": f"127.0.0.1:{port}"}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "python:portal.gunicorn_config",
         "--log-level", "warning", "portal:create_app()"],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"gunicorn did not start: {server.communicate()[1]}")
            time.sleep(0.1)
    yield port
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def test_a_connection_is_kept_alive_between_requests(gunicorn):
    connection = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=10)
    connection.request("GET", PAGE)
    first = connection.getresponse()
    first.read()
    kept = connection.sock
    assert first.status == 200
    assert first.getheader("Connection", "").lower() != "close"
    time.sleep(1)  # a reader's pause: the server keeps the connection meanwhile
    connection.request("GET", PAGE)
    second = connection.getresponse()
    second.read()
    assert second.status == 200 and connection.sock is kept
    connection.close()


def test_idle_connections_do_not_hold_up_other_clients(gunicorn):
    # One connection opened and left silent (a browser's spare connection), several
    # kept alive and idle between clicks: a new client is still answered at once.
    silent = socket.create_connection(("127.0.0.1", gunicorn))
    idle = []
    for _ in range(4):
        connection = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=10)
        connection.request("GET", PAGE)
        connection.getresponse().read()
        idle.append(connection)
    started = time.monotonic()
    for _ in range(5):
        other = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=10)
        other.request("GET", PAGE)
        response = other.getresponse()
        response.read()
        assert response.status == 200
        other.close()
    assert time.monotonic() - started < 3
    silent.close()
    for connection in idle:
        connection.close()
