"""``herald worker`` renders PDFs in child processes, replaced after so many documents and
at once when one dies, so WeasyPrint's C memory and crashes stay out of the worker."""

from __future__ import annotations

import os
from io import BytesIO

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from distribution.documents import DatabaseStore
from portal.db import get_database
from portal.models import Invoice
from portal.render_pool import RenderCrashed, RenderPool
from portal.tasks import POOL_KEY, render_batch, use_render_pool
from tests.factories import invoice_json
from tests.portal.test_rendering import PUBLIC_URL, _import, org

__all__ = ["org"]


@pytest.fixture
def pool():
    pool = RenderPool(documents_per_process=2, processes=1)
    yield pool
    pool.close()


def test_a_child_renders_so_many_documents_then_a_new_one_takes_over(pool):
    pids = [pool.call(os.getpid) for _ in range(5)]
    assert os.getpid() not in pids
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def test_a_child_that_dies_fails_only_its_document_and_is_replaced(pool):
    before = pool.call(os.getpid)
    with pytest.raises(RenderCrashed, match="rendering process died"):
        pool.call(os._exit, 3)
    after = pool.call(os.getpid)
    assert after not in (before, os.getpid())


def test_a_batch_renders_its_pdfs_in_the_pool(app, session, org, pool):
    invoices = _import(session, *(invoice_json(f"INV-P{n}", "C1") for n in range(1, 4)))
    ids = [invoice.id for invoice in invoices]
    session.commit()

    result = render_batch(get_database(app).sessionmaker, DatabaseStore(), PUBLIC_URL, ids,
                          pool=pool)

    assert (result.rendered, result.failed) == (3, 0)
    session.expire_all()
    for invoice in session.scalars(sa.select(Invoice).where(Invoice.id.in_(ids))):
        pdf = DatabaseStore().get(session, invoice.pdf_sha256)
        text = PdfReader(BytesIO(pdf)).pages[0].extract_text()
        assert invoice.number in text


def test_the_worker_uses_a_pool_sized_by_its_threads_and_the_setting(app):
    pool = use_render_pool(app, processes=3)
    try:
        assert app.extensions[POOL_KEY] is pool
        assert (pool.processes, pool.documents_per_process) == (
            3, app.config["HERALD"].pdf_documents_per_process)
    finally:
        pool.close()
        del app.extensions[POOL_KEY]
