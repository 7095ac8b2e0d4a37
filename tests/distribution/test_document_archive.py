"""The document archive: named by year, customer and number, in a folder or an S3
bucket (moto's S3 server on loopback), every read checked against the hash."""

from __future__ import annotations

import socket

import pytest
import sqlalchemy as sa

from distribution.document_names import DocumentName, alternative_key, object_key, safe_part
from distribution.documents import (
    DatabaseStore,
    DocumentFormat,
    DocumentIntegrityError,
    DocumentMissingError,
    DocumentStoreUnavailable,
    FolderStore,
    StoredDocument,
    make_store,
    sha256_of,
)
from distribution.s3_store import S3Store, parse_s3_url, s3_client
from portal.config import Settings
from tests.peers.s3 import s3_bucket, s3_peer  # noqa: F401  (fixtures)

UBL = b"<Invoice>45</Invoice>"
NAME = DocumentName(2026, "C-000123", "INV-2026-000045")


@pytest.fixture
def s3_store(s3_peer, s3_bucket) -> S3Store:  # noqa: F811
    return make_store(s3_peer.store_url(s3_bucket), instance_path=None)


@pytest.fixture(params=["folder", "s3"])
def archive(request, tmp_path):
    if request.param == "folder":
        return FolderStore(tmp_path / "archive")
    return request.getfixturevalue("s3_store")


def _raw(store, key: str) -> bytes:
    if isinstance(store, FolderStore):
        return (store.root / key).read_bytes()
    return store.client.get_object(Bucket=store.bucket, Key=store.prefix + key)["Body"].read()


def _overwrite(store, key: str, data: bytes) -> None:
    """Change a stored object behind Herald's back (through boto3 for S3)."""
    if isinstance(store, FolderStore):
        (store.root / key).write_bytes(data)
    else:
        store.client.put_object(Bucket=store.bucket, Key=store.prefix + key, Body=data)


def test_documents_are_named_by_year_customer_and_number(session, archive):
    ubl = archive.put(session, UBL, DocumentFormat.UBL, NAME)
    pdf = archive.put(session, b"%PDF-1.7 45", DocumentFormat.PDF, NAME)
    signed = archive.put(session, b"%PDF-1.7 45 signed", DocumentFormat.PDF,
                         DocumentName(2026, "C-000123", "INV-2026-000045", "-signed"))
    assert ubl.storage_uri == f"{archive.scheme}:2026/C-000123/INV-2026-000045.xml"
    assert pdf.storage_uri == f"{archive.scheme}:2026/C-000123/INV-2026-000045.pdf"
    assert signed.storage_uri == f"{archive.scheme}:2026/C-000123/INV-2026-000045-signed.pdf"
    assert _raw(archive, "2026/C-000123/INV-2026-000045.xml") == UBL
    assert archive.get(session, ubl.sha256) == UBL
    assert archive.get(session, signed.sha256) == b"%PDF-1.7 45 signed"


def test_the_same_bytes_are_stored_once(session, archive):
    first = archive.put(session, UBL, DocumentFormat.UBL, NAME)
    again = archive.put(session, UBL, DocumentFormat.UBL, DocumentName(2027, "C-9", "X"))
    assert again is first
    assert session.scalar(sa.select(sa.func.count()).select_from(StoredDocument)) == 1


def test_a_taken_name_never_loses_the_first_document(session, archive):
    first = archive.put(session, UBL, DocumentFormat.UBL, NAME)
    other = b"<Invoice>45, rendered by another organisation</Invoice>"
    second = archive.put(session, other, DocumentFormat.UBL, NAME)
    key = "2026/C-000123/INV-2026-000045.xml"
    assert second.storage_uri == f"{archive.scheme}:{alternative_key(key, second.sha256)}"
    assert archive.get(session, first.sha256) == UBL
    assert archive.get(session, second.sha256) == other


def test_unnamed_documents_keep_the_hash_layout(session, archive):
    record = archive.put(session, UBL, DocumentFormat.UBL)
    digest = sha256_of(UBL)
    assert record.storage_uri == f"{archive.scheme}:{digest[:2]}/{digest[2:4]}/{digest}"
    assert archive.get(session, digest) == UBL


def test_a_tampered_object_is_refused_with_a_clear_error(session, archive):
    record = archive.put(session, UBL, DocumentFormat.UBL, NAME)
    _overwrite(archive, "2026/C-000123/INV-2026-000045.xml", b"<Invoice>99</Invoice>")
    with pytest.raises(DocumentIntegrityError) as caught:
        archive.get(session, record.sha256)
    message = str(caught.value)
    assert record.sha256 in message and "2026/C-000123/INV-2026-000045.xml" in message
    assert sha256_of(b"<Invoice>99</Invoice>") in message and "altered" in message


def test_a_deleted_object_is_reported_missing(session, archive):
    record = archive.put(session, UBL, DocumentFormat.UBL, NAME)
    assert archive.delete(record.storage_uri)
    with pytest.raises(DocumentMissingError, match="missing"):
        archive.get(session, record.sha256)


def test_documents_stored_before_names_stay_readable(session, tmp_path):
    """A hash-named file and a document kept in its row, both from earlier versions."""
    folder = FolderStore(tmp_path / "archive")
    digest = sha256_of(UBL)
    old = tmp_path / "archive" / digest[:2] / digest[2:4] / digest
    old.parent.mkdir(parents=True)
    old.write_bytes(UBL)
    session.add(StoredDocument(sha256=digest, format=DocumentFormat.UBL, size=len(UBL),
                               storage_uri=f"folder:{digest[:2]}/{digest[2:4]}/{digest}"))
    in_row = DatabaseStore().put(session, b"%PDF-1.7 old", DocumentFormat.PDF, NAME)
    assert in_row.storage_uri is None
    assert folder.get(session, digest) == UBL
    assert folder.get(session, in_row.sha256) == b"%PDF-1.7 old"


def test_database_documents_stay_readable_after_moving_to_s3(session, s3_store):
    in_row = DatabaseStore().put(session, UBL, DocumentFormat.UBL, NAME)
    assert s3_store.get(session, in_row.sha256) == UBL


def test_a_document_of_another_store_says_where_it_is(session, tmp_path, s3_store):
    record = FolderStore(tmp_path).put(session, UBL, DocumentFormat.UBL, NAME)
    with pytest.raises(DocumentStoreUnavailable, match="folder:2026/C-000123"):
        s3_store.get(session, record.sha256)


def test_unsafe_numbers_cannot_leave_the_archive(session, tmp_path):
    store = FolderStore(tmp_path / "archive")
    name = DocumentName(2026, "../../etc", "../passwd\n\x00 <b>", "/../x")
    record = store.put(session, UBL, DocumentFormat.UBL, name)
    key = record.storage_uri.removeprefix("folder:")
    assert key == "2026/etc/passwd_b_.._x.xml"  # one file name: no separator survives
    assert (tmp_path / "archive" / key).read_bytes() == UBL
    assert safe_part("..") == "_" and safe_part("a/b") == "a_b"
    assert object_key(DocumentName(0, "", ""), "ab" * 32, "pdf") == "0000/_/_.pdf"


def test_a_storage_uri_that_climbs_out_is_refused(session, tmp_path):
    (tmp_path / "secret").write_bytes(UBL)
    store = FolderStore(tmp_path / "archive")
    session.add(StoredDocument(sha256=sha256_of(UBL), format=DocumentFormat.UBL, size=1,
                               storage_uri="folder:../secret"))
    with pytest.raises(DocumentIntegrityError, match="not a relative path"):
        store.get(session, sha256_of(UBL))


def test_s3_objects_carry_their_hash_and_type(session, s3_store):
    record = s3_store.put(session, UBL, DocumentFormat.UBL, NAME)
    head = s3_store.client.head_object(Bucket=s3_store.bucket,
                                       Key="archive/2026/C-000123/INV-2026-000045.xml")
    assert head["Metadata"]["sha256"] == record.sha256
    assert head["ContentType"] == "application/xml"


def test_an_unreachable_s3_endpoint_is_a_clear_error(session):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = S3Store("herald-gone", client=s3_client(f"http://127.0.0.1:{port}", "eu-central-1"))
    with pytest.raises(DocumentStoreUnavailable, match=r"cannot store document .* s3://herald-gone"):
        store.put(session, UBL, DocumentFormat.UBL, NAME)


def test_the_s3_setting(tmp_path):
    assert parse_s3_url("s3://herald-archive/documents/2026?region=eu-west-1") == (
        "herald-archive", "documents/2026", {"region": "eu-west-1"})
    with pytest.raises(ValueError, match="unknown option"):
        make_store("s3://herald-archive?secret=x", tmp_path)
    with pytest.raises(ValueError, match="write s3://bucket/prefix"):
        parse_s3_url("s3:///nobucket")
    settings = Settings.from_env(tmp_path, {
        "DOCUMENT_STORE": "s3://herald-archive/docs",
        "DOCUMENT_STORE_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "DOCUMENT_STORE_S3_REGION": "eu-central-1"})
    assert parse_s3_url(settings.document_store) == ("herald-archive", "docs", {
        "endpoint_url": "http://127.0.0.1:9000", "region": "eu-central-1"})
    store = make_store(settings.document_store, tmp_path)
    assert store.client.meta.endpoint_url == "http://127.0.0.1:9000"
    assert store.client.meta.region_name == "eu-central-1"
    folder = Settings.from_env(tmp_path, {"DOCUMENT_STORE": "folder:x",
                                          "DOCUMENT_STORE_S3_REGION": "x"})
    assert folder.document_store == "folder:x"
