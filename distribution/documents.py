"""Immutable document storage, addressed by SHA-256: issued UBL and rendered PDFs.

Every delivery refers to a document by its hash, so what was sent can always be
shown and proven. Content lives in the database (the embedded default), in a
folder (``DOCUMENT_STORE=folder:/path``) or in an S3-compatible object store
(``DOCUMENT_STORE=s3://bucket/prefix``), named by year, customer and number
(:mod:`distribution.document_names`); wherever it lives, its hash is checked on read.
"""

from __future__ import annotations

import enum
import errno
import hashlib
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, deferred, mapped_column

from distribution.document_names import (
    DocumentName,
    alternative_key,
    check_key,
    hash_key,
    object_key,
)
from distribution.models import Base
from distribution.sqltypes import UTCDateTime, enum_column, utcnow


class DocumentFormat(enum.StrEnum):
    UBL = "ubl"
    PDF = "pdf"


MEDIA_TYPES = {DocumentFormat.UBL: "application/xml", DocumentFormat.PDF: "application/pdf"}


class StoredDocument(Base):
    """One immutable document; its primary key is the SHA-256 of its bytes."""

    __tablename__ = "documents"

    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    format: Mapped[DocumentFormat] = mapped_column(enum_column(DocumentFormat, 8))
    size: Mapped[int]
    content: Mapped[bytes | None] = deferred(mapped_column(sa.LargeBinary))
    storage_uri: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def media_type(self) -> str:
        """The MIME type to serve it with."""
        return MEDIA_TYPES[self.format]


class DocumentIntegrityError(RuntimeError):
    """Stored bytes no longer match their hash: the store was tampered with or damaged."""


class DocumentMissingError(DocumentIntegrityError):
    """A document's record exists but its bytes are gone from the store."""


class DocumentStoreUnavailable(OSError):
    """The store cannot be reached or refuses the request (network, permissions, settings)."""


class DocumentStore(Protocol):
    """Where document bytes live."""

    def put(self, session: Session, data: bytes, fmt: DocumentFormat,
            name: DocumentName | None = None) -> StoredDocument: ...

    def get(self, session: Session, sha256: str) -> bytes: ...

    def delete(self, storage_uri: str | None) -> bool: ...


def sha256_of(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


class _BaseStore:
    """Put and get with the hash check; subclasses move the bytes.

    A record without ``storage_uri`` keeps its bytes in the row (the database
    store, or a document stored before the store was changed), so every store
    reads those; a store reads its own URIs, old hash-named ones included.
    """

    scheme = ""

    def put(self, session: Session, data: bytes, fmt: DocumentFormat,
            name: DocumentName | None = None) -> StoredDocument:
        """Store ``data`` once, under ``name`` when given (by hash otherwise); storing
        the same bytes again returns the existing record."""
        digest = sha256_of(data)
        existing = session.get(StoredDocument, digest)
        if existing is not None:
            return existing
        record = StoredDocument(sha256=digest, format=fmt, size=len(data))
        self._write(record, data, object_key(name, digest, fmt))
        session.add(record)
        session.flush()
        return record

    def get(self, session: Session, sha256: str) -> bytes:
        """The bytes of a stored document, checked against their hash."""
        record = session.get(StoredDocument, sha256)
        if record is None:
            raise KeyError(f"no stored document {sha256}")
        if record.storage_uri is None:
            data = record.content or b""
        else:
            scheme, _, key = record.storage_uri.partition(":")
            if scheme != self.scheme:
                raise DocumentStoreUnavailable(
                    f"document {sha256} is stored at {record.storage_uri!r}, which "
                    f"DOCUMENT_STORE ({self.describe()}) cannot read; point it at that store")
            data = self._read(_checked(key), sha256)
        actual = sha256_of(data)
        if actual != sha256:
            raise DocumentIntegrityError(
                f"document {sha256} ({record.storage_uri or 'in the database'}) does not "
                f"match its hash: its bytes hash to {actual}; it was altered or damaged")
        return data

    def delete(self, storage_uri: str | None) -> bool:
        """Remove the bytes at ``storage_uri`` (after their record was purged)."""
        if storage_uri is None:
            return False
        scheme, _, key = storage_uri.partition(":")
        return scheme == self.scheme and self._delete(_checked(key))

    def describe(self) -> str:
        """Where this store keeps documents, for messages."""
        return "database"

    def _write(self, record: StoredDocument, data: bytes, key: str) -> None:
        raise NotImplementedError

    def _read(self, key: str, sha256: str) -> bytes:
        raise NotImplementedError

    def _delete(self, key: str) -> bool:
        return False


def _checked(key: str) -> str:
    try:
        return check_key(key)
    except ValueError as exc:
        raise DocumentIntegrityError(str(exc)) from None


class DatabaseStore(_BaseStore):
    """Keeps the bytes in the ``documents`` row itself."""

    def _write(self, record: StoredDocument, data: bytes, key: str) -> None:
        record.content = data


class FolderStore(_BaseStore):
    """Keeps the bytes in files under ``root``, named by year, customer and number
    (``2026/C-000123/INV-2026-000045.xml``) or, unnamed, by hash (``ab/cd/abcd...``)."""

    scheme = "folder"

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        """Where this store keeps documents, for messages."""
        return f"folder:{self.root}"

    def _path(self, sha256: str) -> Path:
        return self.root / hash_key(sha256)

    def _write(self, record: StoredDocument, data: bytes, key: str) -> None:
        for candidate in (key, alternative_key(key, record.sha256)):
            if self._create(self.root / candidate, data, record.sha256):
                record.storage_uri = f"{self.scheme}:{candidate}"
                return
        raise DocumentIntegrityError(
            f"{self.root / alternative_key(key, record.sha256)} holds other bytes than "
            f"document {record.sha256}; the folder was altered")

    def _create(self, path: Path, data: bytes, sha256: str) -> bool:
        """Write ``path`` unless it exists; True when it now holds ``data``.

        A disk that is full (or read-only, or failing) raises
        :class:`DocumentStoreUnavailable` saying so; the partial file is removed first.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                return sha256_of(path.read_bytes()) == sha256
            # Write to a temporary file and link it into place: a crash never leaves half
            # a document, and two writers of one name never overwrite each other.
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        except OSError as exc:
            raise self._cannot_store(sha256, path, exc) from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                return sha256_of(path.read_bytes()) == sha256
        except OSError as exc:
            raise self._cannot_store(sha256, path, exc) from exc
        finally:
            Path(temporary).unlink(missing_ok=True)
        return True

    def _cannot_store(self, sha256: str, path: Path, exc: OSError) -> DocumentStoreUnavailable:
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            reason += " (the disk holding the document folder is full)"
        error = DocumentStoreUnavailable(
            f"cannot store document {sha256} as {path} in {self.describe()}: {reason}; "
            "nothing was stored; free space (or fix the folder) and try again")
        error.errno = exc.errno  # callers may tell a full disk from a refused one
        return error

    def _read(self, key: str, sha256: str) -> bytes:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            raise DocumentMissingError(
                f"document {sha256} is missing: there is no file {self.root / key}") from None

    def _delete(self, key: str) -> bool:
        path = self.root / key
        if not path.exists():
            return False
        path.unlink()
        return True


def make_store(setting: str | None, instance_path: Path) -> DocumentStore:
    """The store named by ``DOCUMENT_STORE``: ``database`` (default), ``folder:/path``
    or ``s3://bucket/prefix`` (see :mod:`distribution.s3_store`)."""
    if not setting or setting == "database":
        return DatabaseStore()
    if setting.startswith("folder:"):
        folder = Path(setting.removeprefix("folder:"))
        return FolderStore(folder if folder.is_absolute() else instance_path / folder)
    if setting.startswith("s3://"):
        from distribution.s3_store import s3_store_from_url

        return s3_store_from_url(setting)
    raise ValueError(f"DOCUMENT_STORE={setting!r} is not supported; use 'database', "
                     "'folder:/path/to/documents' or 's3://bucket/prefix'")
