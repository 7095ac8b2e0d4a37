"""Picks the reader for an import file from its name, or else from its first bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from portal.imports.csv_format import read_csv
from portal.imports.documents import ImportedDocument
from portal.imports.json_format import read_json
from portal.imports.problems import ImportRejected, Problem
from portal.imports.ubl_format import read_ubl_file

Reader = Callable[[bytes, str], list[ImportedDocument]]
READERS: dict[str, Reader] = {".json": read_json, ".csv": read_csv, ".xml": read_ubl_file}


def read_documents(path: Path) -> list[ImportedDocument]:
    """Read every document in ``path``; raises ImportRejected naming what is wrong."""
    file = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportRejected([Problem(file, "", "", f"cannot be read ({exc.strerror})")]) from exc
    reader = READERS.get(path.suffix.lower()) or _sniff(data)
    if reader is None:
        raise ImportRejected([Problem(file, "", "", "is not JSON, CSV or UBL XML; Herald reads "
                                                    ".json, .csv and .xml files")])
    return reader(data, file)


def _sniff(data: bytes) -> Reader | None:
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start in (b"{", b"["):
        return read_json
    if start == b"<":
        return read_ubl_file
    if b"invoice_number" in data.split(b"\n", 1)[0]:
        return read_csv
    return None
