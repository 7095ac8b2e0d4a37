"""Documents in an S3-compatible object store (AWS S3, MinIO, Ceph, Garage...).

``DOCUMENT_STORE=s3://bucket/prefix`` picks it. The endpoint and region come
from the URL's query (``?endpoint_url=https://...&region=eu-central-1``), which
:class:`portal.config.Settings` fills from ``DOCUMENT_STORE_S3_ENDPOINT_URL`` and
``DOCUMENT_STORE_S3_REGION``; without them boto3 uses AWS's own settings
(``AWS_ENDPOINT_URL_S3``, ``AWS_DEFAULT_REGION``, a profile). Credentials never
appear in the setting: boto3's chain finds them (``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance or pod role).

Objects are written once: ``If-None-Match: *`` makes the store refuse to
overwrite a name that exists, so a document is never replaced by another with
the same name (that one is filed under its name and hash instead). Each object
carries its SHA-256 in its metadata for tools that copy the archive; Herald
itself hashes the bytes it reads.
"""

from __future__ import annotations

import functools
from urllib.parse import parse_qs, urlsplit

from distribution.document_names import alternative_key
from distribution.documents import (
    MEDIA_TYPES,
    DocumentIntegrityError,
    DocumentMissingError,
    DocumentStoreUnavailable,
    StoredDocument,
    _BaseStore,
    sha256_of,
)

_OPTIONS = {"endpoint_url", "region"}


class S3Store(_BaseStore):
    """Keeps the bytes as objects under ``prefix`` in ``bucket``."""

    scheme = "s3"

    def __init__(self, bucket: str, prefix: str = "", *, client) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client

    def describe(self) -> str:
        """Where this store keeps documents, for messages."""
        return f"s3://{self.bucket}/{self.prefix}"

    def _write(self, record: StoredDocument, data: bytes, key: str) -> None:
        for candidate in (key, alternative_key(key, record.sha256)):
            if self._create(candidate, data, record):
                record.storage_uri = f"{self.scheme}:{candidate}"
                return
        raise DocumentIntegrityError(
            f"{self.describe()}{alternative_key(key, record.sha256)} holds other bytes than "
            f"document {record.sha256}; the bucket was altered")

    def _create(self, key: str, data: bytes, record: StoredDocument) -> bool:
        """Put ``key`` unless it exists; True when it now holds ``data``."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self.prefix + key, Body=data, IfNoneMatch="*",
                ContentType=MEDIA_TYPES[record.format], Metadata={"sha256": record.sha256})
            return True
        except ClientError as exc:
            if _code(exc) not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise self._unavailable("store", record.sha256, exc) from None
        except BotoCoreError as exc:
            raise self._unavailable("store", record.sha256, exc) from None
        # The name is taken: by these very bytes (a retry after a crash), or by others.
        try:
            return sha256_of(self._get_object(key, record.sha256)) == record.sha256
        except DocumentMissingError:
            return False

    def _read(self, key: str, sha256: str) -> bytes:
        return self._get_object(key, sha256)

    def _get_object(self, key: str, sha256: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            return response["Body"].read()
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                raise DocumentMissingError(
                    f"document {sha256} is missing: there is no object "
                    f"{self.describe()}{key}") from None
            raise self._unavailable("read", sha256, exc) from None
        except BotoCoreError as exc:
            raise self._unavailable("read", sha256, exc) from None

    def _delete(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable("delete", key, exc) from None
        return True

    def _unavailable(self, action: str, what: str, exc: Exception) -> DocumentStoreUnavailable:
        # The message names the bucket and the S3 error code, never the credentials.
        return DocumentStoreUnavailable(
            f"cannot {action} document {what} in {self.describe()}: {exc}")


def _code(exc) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def parse_s3_url(url: str) -> tuple[str, str, dict[str, str]]:
    """``s3://bucket/prefix?endpoint_url=...&region=...`` as (bucket, prefix, options)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"DOCUMENT_STORE={url!r} is not an S3 URL; write s3://bucket/prefix")
    options = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ValueError(f"DOCUMENT_STORE={url!r}: unknown option(s) {', '.join(sorted(unknown))}"
                         f"; the URL takes {', '.join(sorted(_OPTIONS))}")
    return parts.netloc, parts.path.strip("/"), options


def s3_store_from_url(url: str) -> S3Store:
    """The store ``DOCUMENT_STORE=s3://...`` names, with a client shared by the process."""
    bucket, prefix, options = parse_s3_url(url)
    return S3Store(bucket, prefix, client=s3_client(options.get("endpoint_url"),
                                                   options.get("region")))


@functools.lru_cache(maxsize=8)
def s3_client(endpoint_url: str | None, region: str | None):
    """One boto3 client per endpoint and region: building one takes tens of milliseconds,
    and clients are thread-safe, so requests and workers share it."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise ValueError("DOCUMENT_STORE=s3://... needs boto3: pip install 'herald[s3]'") from exc
    # Path-style addressing for other endpoints: MinIO and most self-hosted stores serve
    # buckets under one host name, not as sub-domains.
    config = Config(connect_timeout=5, read_timeout=30,
                    retries={"max_attempts": 4, "mode": "standard"},
                    s3={"addressing_style": "path" if endpoint_url else "auto"})
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region,
                                          config=config)
