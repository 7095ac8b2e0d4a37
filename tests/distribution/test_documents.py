"""Stored documents: addressed by hash, stored once, checked on every read."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from distribution.documents import (
    DatabaseStore,
    DocumentFormat,
    DocumentIntegrityError,
    FolderStore,
    StoredDocument,
    make_store,
    sha256_of,
)


@pytest.fixture(params=["database", "folder"])
def store(request, tmp_path):
    return DatabaseStore() if request.param == "database" else FolderStore(tmp_path / "docs")


def test_put_then_get_returns_the_same_bytes(session, store):
    data = b"<Invoice>one</Invoice>"
    record = store.put(session, data, DocumentFormat.UBL)
    assert record.sha256 == sha256_of(data) and record.size == len(data)
    assert store.get(session, record.sha256) == data
    assert record.media_type == "application/xml"


def test_the_same_bytes_are_stored_once(session, store):
    first = store.put(session, b"%PDF-1.7 x", DocumentFormat.PDF)
    second = store.put(session, b"%PDF-1.7 x", DocumentFormat.PDF)
    assert first is second
    assert session.scalar(sa.select(sa.func.count()).select_from(StoredDocument)) == 1


def test_tampered_database_content_is_detected(session):
    store = DatabaseStore()
    record = store.put(session, b"original", DocumentFormat.UBL)
    session.execute(sa.update(StoredDocument).values(content=b"changed"))
    session.expire_all()
    with pytest.raises(DocumentIntegrityError):
        store.get(session, record.sha256)


def test_tampered_file_is_detected(session, tmp_path):
    store = FolderStore(tmp_path)
    record = store.put(session, b"original", DocumentFormat.UBL)
    path = next(p for p in tmp_path.rglob("*") if p.is_file())
    assert path.name == record.sha256
    path.write_bytes(b"changed")
    with pytest.raises(DocumentIntegrityError):
        store.get(session, record.sha256)


def test_store_is_chosen_by_setting(tmp_path):
    assert isinstance(make_store(None, tmp_path), DatabaseStore)
    folder = make_store("folder:docs", tmp_path)
    assert isinstance(folder, FolderStore) and folder.root == tmp_path / "docs"
    with pytest.raises(ValueError, match="DOCUMENT_STORE='ftp://x'"):
        make_store("ftp://x", tmp_path)
