"""A real S3 REST endpoint for tests: moto's server on 127.0.0.1.

moto's ``ThreadedMotoServer`` is a werkzeug server that speaks the S3 protocol
(signed requests, buckets, conditional puts with ``If-None-Match``, 404
``NoSuchKey``), so the store's boto3 client talks HTTP to it exactly as it would to
AWS or MinIO. One server serves the test session; each test gets a bucket of its
own (:func:`s3_bucket`).

Use the ``s3_peer`` and ``s3_bucket`` fixtures (import them in a test module).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "eu-central-1"


@dataclass(eq=False)
class S3Peer:
    """The running server: its endpoint, and a client to look behind Herald's back."""

    endpoint_url: str

    @functools.cached_property
    def client(self):
        """A boto3 client of the peer, with the test credentials (built once: that is slow)."""
        return boto3.session.Session(
            aws_access_key_id="herald-test", aws_secret_access_key="herald-test-secret",
        ).client("s3", endpoint_url=self.endpoint_url, region_name=REGION)

    def store_url(self, bucket: str, prefix: str = "archive") -> str:
        """The ``DOCUMENT_STORE`` setting for ``bucket``."""
        return f"s3://{bucket}/{prefix}?endpoint_url={self.endpoint_url}&region={REGION}"

    def keys(self, bucket: str) -> list[str]:
        """Every object key in ``bucket``, sorted."""
        listed = self.client.list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))


@pytest.fixture(scope="session")
def s3_peer() -> Iterator[S3Peer]:
    """moto's S3 server on a free loopback port, for the whole session."""
    patch = pytest.MonkeyPatch()
    # Herald's store finds credentials the way boto3 does; these are the test's.
    patch.setenv("AWS_ACCESS_KEY_ID", "herald-test")
    patch.setenv("AWS_SECRET_ACCESS_KEY", "herald-test-secret")
    patch.delenv("AWS_PROFILE", raising=False)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Peer(f"http://{host}:{port}")
    finally:
        server.stop()
        patch.undo()


@pytest.fixture
def s3_bucket(s3_peer) -> str:
    """A new, empty bucket for one test."""
    name = f"herald-{uuid.uuid4().hex[:16]}"
    s3_peer.client.create_bucket(Bucket=name,
                                   CreateBucketConfiguration={"LocationConstraint": REGION})
    return name
