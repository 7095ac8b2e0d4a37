"""How stored documents are named in a folder or an object store.

An archive is browsed by people (an auditor asking for last year's invoices of
one customer) and by tools that copy it by prefix, so documents are named by
year, customer and number: ``2026/C-000123/INV-2026-000045.xml``, its PDF
``.pdf``, the signed copy ``-signed.pdf``. A document without a name (stored by
code that knows no invoice) keeps the older hash layout ``ab/cd/abcd...``, which
is also how documents stored before names existed are found.

Names come from user input (numbers are imported), so every part is reduced to
safe characters: no path separator, no ``..``, no control character. Two
different documents can still want one name (two organisations' customer
``C1``, a PDF rendered twice at once); the second then gets the name followed by
its hash, and the record keeps whichever name was used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXTENSIONS = {"ubl": "xml", "pdf": "pdf"}
_PART_LIMIT = 80


@dataclass(frozen=True, slots=True)
class DocumentName:
    """Year, customer and number a document is filed under; ``suffix`` tells copies
    of the same number apart (``-signed``, ``-reminder-14``)."""

    year: int
    customer: str
    number: str
    suffix: str = ""


def safe_part(value: str) -> str:
    """``value`` reduced to letters, digits, ``.``, ``_`` and ``-``, never empty or dotted."""
    cleaned = _UNSAFE.sub("_", value).strip("._")[:_PART_LIMIT].rstrip(".")
    return cleaned or "_"


def hash_key(sha256: str) -> str:
    """The key of an unnamed document: ``ab/cd/abcd...``."""
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def object_key(name: DocumentName | None, sha256: str, fmt: str) -> str:
    """The key a document is first offered under (see :func:`alternative_key`)."""
    if name is None:
        return hash_key(sha256)
    year = name.year if 1 <= name.year <= 9999 else 0
    stem = safe_part(name.number + name.suffix)
    return f"{year:04d}/{safe_part(name.customer)}/{stem}.{_EXTENSIONS.get(str(fmt), 'bin')}"


def alternative_key(key: str, sha256: str) -> str:
    """The key to use when ``key`` already holds other bytes: the hash goes before
    the extension (``INV-1.3f2a....pdf``)."""
    if key.endswith(sha256):
        return key
    stem, dot, extension = key.rpartition(".")
    return f"{stem}.{sha256}.{extension}" if dot else f"{key}.{sha256}"


def check_key(key: str) -> str:
    """``key`` when it is a relative path inside the store; raises ValueError otherwise.

    Keys come from ``documents.storage_uri``; a key that climbs out of the store
    (``..``, an absolute path) would read any file the process can read.
    """
    parts = key.split("/")
    if not key or key.startswith("/") or "\\" in key or any(
            part in ("", ".", "..") for part in parts):
        raise ValueError(f"stored document key {key!r} is not a relative path inside the store")
    return key
