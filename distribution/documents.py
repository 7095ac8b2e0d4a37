"""Immutable document storage, addressed by SHA-256: issued UBL and rendered PDFs.

Every delivery refers to a document by its hash, so what was sent can always be
shown and proven. Content lives in the database (the embedded default) or in a
folder (``DOCUMENT_STORE=folder:/path``); either way its hash is checked on read.
"""

from __future__ import annotations

import enum
import hashlib
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, deferred, mapped_column

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


class DocumentStore(Protocol):
    """Where document bytes live."""

    def put(self, session: Session, data: bytes, fmt: DocumentFormat) -> StoredDocument: ...

    def get(self, session: Session, sha256: str) -> bytes: ...


def sha256_of(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


class _BaseStore:
    def put(self, session: Session, data: bytes, fmt: DocumentFormat) -> StoredDocument:
        """Store ``data`` once; storing the same bytes again returns the existing record."""
        digest = sha256_of(data)
        existing = session.get(StoredDocument, digest)
        if existing is not None:
            return existing
        record = StoredDocument(sha256=digest, format=fmt, size=len(data))
        self._write(record, data)
        session.add(record)
        session.flush()
        return record

    def get(self, session: Session, sha256: str) -> bytes:
        """The bytes of a stored document, checked against their hash."""
        record = session.get(StoredDocument, sha256)
        if record is None:
            raise KeyError(f"no stored document {sha256}")
        data = self._read(record)
        if sha256_of(data) != sha256:
            raise DocumentIntegrityError(f"document {sha256} does not match its hash")
        return data

    def _write(self, record: StoredDocument, data: bytes) -> None:
        raise NotImplementedError

    def _read(self, record: StoredDocument) -> bytes:
        raise NotImplementedError


class DatabaseStore(_BaseStore):
    """Keeps the bytes in the ``documents`` row itself."""

    def _write(self, record: StoredDocument, data: bytes) -> None:
        record.content = data

    def _read(self, record: StoredDocument) -> bytes:
        return record.content or b""


class FolderStore(_BaseStore):
    """Keeps the bytes in files under ``root``, named by hash (``ab/cd/abcd...``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def _write(self, record: StoredDocument, data: bytes) -> None:
        path = self._path(record.sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Write to a temporary file and rename, so a crash never leaves half a document.
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        record.storage_uri = f"folder:{record.sha256[:2]}/{record.sha256[2:4]}/{record.sha256}"

    def _read(self, record: StoredDocument) -> bytes:
        return self._path(record.sha256).read_bytes()


def make_store(setting: str | None, instance_path: Path) -> DocumentStore:
    """The store named by ``DOCUMENT_STORE``: ``database`` (default) or ``folder:/path``."""
    if not setting or setting == "database":
        return DatabaseStore()
    if setting.startswith("folder:"):
        folder = Path(setting.removeprefix("folder:"))
        return FolderStore(folder if folder.is_absolute() else instance_path / folder)
    raise ValueError(f"DOCUMENT_STORE={setting!r} is not supported; use 'database' or "
                     "'folder:/path/to/documents'")
