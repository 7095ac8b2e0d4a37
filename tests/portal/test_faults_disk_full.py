"""Fault test: the disk of the document folder full while invoices are issued.

The folder store (``DOCUMENT_STORE=folder:...``) lives on a real tmpfs of 512 KiB
mounted for the test and filled up with a filler file, so the kernel itself answers
``ENOSPC`` (the test needs the right to mount, as root in CI, and skips otherwise).
Issuing then fails cleanly, through the command line and the API: a clear error,
nothing of the document written (no partial or temporary file left behind),
no invoice and no event recorded, the audit chain intact. Once space returns,
the same import issues the invoice and its UBL reads back with its hash checked.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from distribution.documents import DocumentFormat, DocumentStoreUnavailable, make_store
from distribution.events import Event, verify_chain
from portal.api.keys import create_key
from portal.models import Invoice
from tests.factories import invoice_json, make_customer, make_organisation
from tests.portal.api.conftest import Api, assert_error


class TinyDisk:
    """A 512 KiB tmpfs; ``fill()`` takes every free byte, ``free()`` gives them back."""

    def __init__(self, mountpoint: Path) -> None:
        self.mountpoint = mountpoint
        self.filler = mountpoint / "filler"

    def fill(self) -> None:
        """Write zeros until the kernel says the disk is full."""
        descriptor = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                os.write(descriptor, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        finally:
            os.close(descriptor)

    def free(self) -> None:
        self.filler.unlink()

    def files(self) -> list[str]:
        """Every file on the disk except the filler, temporary ones included."""
        return sorted(str(p.relative_to(self.mountpoint)) for p in self.mountpoint.rglob("*")
                      if p.is_file() and p != self.filler)


@pytest.fixture
def tiny_disk(tmp_path) -> Iterator[TinyDisk]:
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs",
                              str(mountpoint)], capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield TinyDisk(mountpoint)
    finally:
        subprocess.run(["umount", "--lazy", str(mountpoint)], check=False)


@pytest.fixture
def folder_store(app, session, monkeypatch, tiny_disk) -> TinyDisk:
    """The app's DOCUMENT_STORE pointed at a folder on the tiny disk; a seller with
    customer C1."""
    make_customer(session, make_organisation(session), "C1")
    settings = app.config["HERALD"]
    setting = f"folder:{tiny_disk.mountpoint / 'documents'}"
    monkeypatch.setitem(app.config, "HERALD", dataclasses.replace(settings,
                                                                  document_store=setting))
    return tiny_disk


def counts(session) -> tuple[int, int]:
    session.expire_all()
    return (session.scalar(sa.select(sa.func.count()).select_from(Invoice)),
            session.scalar(sa.select(sa.func.count()).select_from(Event)))


def test_the_store_refuses_cleanly_and_works_again_after(tiny_disk, session):
    store = make_store(f"folder:{tiny_disk.mountpoint}", tiny_disk.mountpoint)
    data = b"<Invoice>" + os.urandom(8192).hex().encode() + b"</Invoice>"
    tiny_disk.fill()
    with pytest.raises(DocumentStoreUnavailable, match="No space left on device") as refused:
        store.put(session, data, DocumentFormat.UBL)
    assert refused.value.errno == errno.ENOSPC
    assert "the disk holding the document folder is full" in str(refused.value)
    assert "nothing was stored" in str(refused.value)
    assert tiny_disk.files() == []  # no partial document, no temporary file
    session.rollback()

    tiny_disk.free()
    record = store.put(session, data, DocumentFormat.UBL)
    assert store.get(session, record.sha256) == data
    assert len(tiny_disk.files()) == 1


def test_issuing_on_a_full_disk_fails_cleanly_then_succeeds(session, runner, folder_store,
                                                             tmp_path):
    path = tmp_path / "invoices.json"
    path.write_text(json.dumps([invoice_json("INV-DISK-1"), invoice_json("INV-DISK-2")]))
    before = counts(session)
    folder_store.fill()

    result = runner.invoke(args=["invoices", "import", str(path)])
    assert result.exit_code == 1, result.output
    assert "refused, nothing imported" in result.output
    assert "No space left on device (the disk holding the document folder is full)" \
        in result.output
    assert "Traceback" not in result.output
    assert counts(session) == before  # no invoice, no event: the transaction rolled back
    assert folder_store.files() == []
    assert verify_chain(session) is None

    folder_store.free()
    result = runner.invoke(args=["invoices", "import", str(path)])
    assert result.exit_code == 0, result.output
    session.expire_all()
    invoices = session.scalars(sa.select(Invoice).where(
        Invoice.number.in_(["INV-DISK-1", "INV-DISK-2"]))).all()
    assert len(invoices) == 2 and all(i.ubl_sha256 for i in invoices)
    store = make_store(f"folder:{folder_store.mountpoint / 'documents'}", Path("/"))
    for invoice in invoices:
        assert invoice.number.encode() in store.get(session, invoice.ubl_sha256)
    assert len(folder_store.files()) == 2
    assert verify_chain(session) is None


def test_the_api_answers_503_on_a_full_disk_then_creates(client, session, folder_store):
    _key, secret = create_key(session, "billing system", ["invoices:write", "read"],
                              actor="test")
    session.flush()
    api = Api(client, secret)
    document = invoice_json("API-DISK-1", "C1")
    before = counts(session)
    folder_store.fill()
    response = api.post("/invoices", document, key="disk-1")
    error = assert_error(response, 503, "document_store_unavailable")
    assert "nothing was created" in error["message"]
    assert "/" not in error["message"]  # the folder's path stays on the server
    assert response.headers["Retry-After"] == "60"
    assert counts(session) == before and folder_store.files() == []

    folder_store.free()
    response = api.post("/invoices", document, key="disk-1")  # the same key: a real retry
    assert response.status_code == 201, response.data
    assert len(folder_store.files()) == 1
    assert verify_chain(session) is None
