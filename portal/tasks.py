"""The portal's background tasks: rendering issued invoices' PDFs in batches.

Issuing stores the UBL at once but leaves the PDF (about 150 ms each) to the
worker, so importing thousands of invoices is not held up by rendering.
Callers enqueue after their transaction commits (:func:`enqueue_pdf_rendering`);
a batch skips invoices that already have a PDF, so running it twice is harmless.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import Flask
from huey import crontab
from huey.api import TaskWrapper
from sqlalchemy.orm import Session, sessionmaker

from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, DeliveryState, Message
from distribution.documents import DocumentStore, DocumentStoreUnavailable, make_store
from distribution.worker import BULK_PRIORITY
from portal.config import Settings
from portal.db import get_database
from portal.models import Invoice
from portal.queue import get_huey
from portal.render_pool import RenderPool
from portal.rendering import PdfJob, prepare_pdf, store_pdf

log = logging.getLogger(__name__)

EXTENSION_KEY = "herald.portal_tasks"
POOL_KEY = "herald.render_pool"
BATCH_SIZE = 100
# A batch of 100 takes about 15 s; a task that long would keep a worker from
# the sends queued behind it and hold up a graceful stop (Ctrl+C waits for
# running tasks). A task renders for about this long, then queues the rest.
TASK_BUDGET_SECONDS = 2.0
ACTOR = "worker:render"
# Between sends (which never wait) and the bulk backlog.
WANTED_PRIORITY = 50
# Bound parameters per IN (...) query; SQLite allows far more, but long lists gain nothing.
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one batch did: invoices rendered, skipped (already rendered or gone), failed,
    and those left for a later task because the batch ran out of time."""

    rendered: int = 0
    skipped: int = 0
    failed: int = 0
    remaining: list[int] = field(default_factory=list)


def render_batch(make_session: sessionmaker[Session], store: DocumentStore, public_url: str,
                 invoice_ids: Sequence[int], *, budget_seconds: float | None = None,
                 pool: RenderPool | None = None) -> BatchResult:
    """Render the PDFs the invoices lack, one transaction per invoice.

    One transaction each because recording the event locks the head of the
    event chain until commit: a batch-long transaction would hold it for
    fifteen seconds. A failure is logged and the rest of the batch goes on (unless the
    store is unavailable: then the batch stops, as every render would fail alike);
    the download routes render on demand, so a failed PDF is not lost for good.
    With ``budget_seconds``, the batch stops starting renders once that much
    time has passed and returns the ids it did not reach in ``remaining``. With
    ``pool``, each PDF is rendered in one of its child processes.
    """
    rendered = skipped = failed = 0
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    for position, invoice_id in enumerate(invoice_ids):
        if deadline is not None and position and time.monotonic() >= deadline:
            return BatchResult(rendered, skipped, failed, list(invoice_ids[position:]))
        try:
            with make_session() as session, session.begin():
                invoice = session.get(Invoice, invoice_id)
                if invoice is None or invoice.pdf_sha256 or not invoice.ubl_sha256:
                    skipped += 1
                    continue
                job = prepare_pdf(session, invoice, store, public_url=public_url)
            # Outside any transaction: no lock held while rendering.
            pdf = job.render() if pool is None else pool.call(PdfJob.render, job)
            with make_session() as session, session.begin():
                store_pdf(session, session.get(Invoice, invoice_id), pdf, store, actor=ACTOR)
            rendered += 1
        except DocumentStoreUnavailable as exc:
            # The store refuses every document alike (its disk is full, say): rendering the
            # rest would only burn CPU. They count as failed: the minute's pass renders again
            # those an email waits for, a download any other.
            left = len(invoice_ids) - position
            log.error("rendering the PDF of invoice %s failed, the document store is "
                      "unavailable (%d renders stopped): %s", invoice_id, left, exc)
            return BatchResult(rendered, skipped, failed + left)
        except Exception:
            log.exception("rendering the PDF of invoice %s failed", invoice_id)
            failed += 1
    return BatchResult(rendered, skipped, failed)


def init_app(app: Flask, settings: Settings) -> None:
    """Register the portal's tasks on the app's Huey (called once by ``queue.init_app``)."""
    huey = get_huey(app)
    make_session = get_database(app).sessionmaker
    stores: list[DocumentStore] = []

    def store() -> DocumentStore:
        if not stores:
            stores.append(make_store(settings.document_store, settings.instance_path))
        return stores[0]

    # No Huey retries: a render that failed once fails again on the same data, and
    # the download routes render on demand anyway.
    def pool() -> RenderPool | None:  # set by a long-running consumer (use_render_pool)
        return app.extensions.get(POOL_KEY)

    @huey.task(name="render_pdfs", retries=0, priority=BULK_PRIORITY)
    def render_pdfs(invoice_ids: list[int]) -> dict[str, int]:
        result = render_batch(make_session, store(), settings.public_url, invoice_ids,
                              budget_seconds=TASK_BUDGET_SECONDS, pool=pool())
        if result.remaining:
            # The rest goes to the back of the queue: sends waiting behind it get a turn.
            render_pdfs(result.remaining)
        log.info("rendered %d PDFs (%d skipped, %d failed, %d handed on)", result.rendered,
                 result.skipped, result.failed, len(result.remaining))
        return {"rendered": result.rendered, "skipped": result.skipped,
                "failed": result.failed, "handed_on": len(result.remaining)}

    # Every minute: the PDFs that released or pending emails are waiting for go ahead
    # of the backlog (a month-end import queues thousands; a run needs its own first).
    @huey.periodic_task(crontab(minute="*"), name="render_wanted_pdfs",
                        priority=WANTED_PRIORITY)
    def render_wanted_pdfs() -> dict[str, int]:
        with make_session() as session:
            wanted = wanted_invoice_ids(session)
        result = render_batch(make_session, store(), settings.public_url, wanted,
                              budget_seconds=TASK_BUDGET_SECONDS * 10, pool=pool())
        if wanted:
            log.info("rendered %d PDFs emails were waiting for (%d left for the next pass)",
                     result.rendered, len(result.remaining))
        return {"rendered": result.rendered, "remaining": len(result.remaining)}

    app.extensions[EXTENSION_KEY] = render_pdfs


def wanted_invoice_ids(session: Session, limit: int = 500) -> list[int]:
    """Invoices whose PDF an unsent email is waiting for, oldest message first."""
    waiting = (sa.select(Message.ubl_sha256)
               .join(Delivery, Delivery.message_id == Message.id)
               .where(Delivery.channel == ChannelName.EMAIL,
                      Delivery.state.in_((DeliveryState.PENDING, DeliveryState.RELEASED)),
                      Message.pdf_sha256.is_(None), Message.ubl_sha256.is_not(None))
               .order_by(Message.id).limit(limit))
    hashes = sorted(set(session.scalars(waiting)))
    if not hashes:
        return []
    return sorted(set(session.scalars(sa.select(Invoice.id).where(
        Invoice.ubl_sha256.in_(hashes), Invoice.pdf_sha256.is_(None)))))


def use_render_pool(app: Flask, processes: int) -> RenderPool:
    """Make the app's render tasks render in recycled child processes (see portal.render_pool).

    For a long-running consumer (``herald worker``); close the pool when it stops.
    """
    settings: Settings = app.config["HERALD"]
    app.extensions[POOL_KEY] = RenderPool(settings.pdf_documents_per_process, processes)
    return app.extensions[POOL_KEY]


def render_pdfs_task(app: Flask) -> TaskWrapper:
    """The ``render_pdfs(invoice_ids)`` task registered on the app's queue."""
    return app.extensions[EXTENSION_KEY]


def batches(ids: Sequence[int], size: int = BATCH_SIZE) -> list[list[int]]:
    """``ids`` in order, cut into lists of at most ``size``."""
    return [list(ids[start:start + size]) for start in range(0, len(ids), size)]


def enqueue_pdf_rendering(app: Flask, invoice_ids: Iterable[int]) -> int:
    """Queue PDF rendering for ``invoice_ids`` in batches; return how many batches.

    Call it after the transaction that issued the invoices has committed, so
    the worker never looks for invoices it cannot see yet.
    """
    task: Callable[[list[int]], object] = render_pdfs_task(app)
    # Newest first: recently issued documents are the ones runs are about to send (their
    # emails wait for the PDF), while a backlog of old ones only matters for downloads.
    chunks = batches(sorted(set(invoice_ids), reverse=True))
    for chunk in chunks:
        task(chunk)
    return len(chunks)


def unrendered_invoice_ids(session: Session, numbers: Iterable[str] | None = None) -> list[int]:
    """Ids of issued invoices without a PDF; only those numbered ``numbers`` when given.

    Numbers are unique per seller, not overall: another seller's invoice of
    the same number may be included, which costs a render it needed anyway.
    """
    query = sa.select(Invoice.id).where(Invoice.ubl_sha256.is_not(None),
                                        Invoice.pdf_sha256.is_(None)).order_by(Invoice.id)
    if numbers is None:
        return list(session.scalars(query))
    wanted = sorted(set(numbers))
    ids: list[int] = []
    for start in range(0, len(wanted), _CHUNK):
        ids.extend(session.scalars(query.where(Invoice.number.in_(wanted[start:start + _CHUNK]))))
    return sorted(set(ids))
