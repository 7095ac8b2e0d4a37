"""The worker renders PDFs in child processes that are replaced now and then.

WeasyPrint's C libraries (Pango, HarfBuzz, fontconfig) keep a little memory per
document that Python cannot give back (about 0.4 MB per 1,000 documents, see
docs/benchmarks.md), and a document that crashed one of them would take the whole
worker down with the sends it is running. So ``herald worker`` hands each render to
a child process, which is replaced after ``documents_per_process`` documents (its
memory goes back to the system with it) and, should it crash, is replaced at once
while only that document fails. Children are started with ``spawn``: they inherit
no database connection, thread or lock from the worker.

Paths that render once and end (the command line, a web request, tests in
immediate mode) render in their own process, as before.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class RenderCrashed(Exception):
    """The child process died while rendering; the pool starts a new one."""


class RenderPool:
    """Up to ``processes`` child processes, each replaced after ``documents_per_process`` calls.

    Safe to use from several threads (Huey's thread workers): each call waits for
    its own result.
    """

    def __init__(self, documents_per_process: int, processes: int = 2) -> None:
        if documents_per_process <= 0 or processes <= 0:
            raise ValueError("documents_per_process and processes must be above 0")
        self.documents_per_process = documents_per_process
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.processes, max_tasks_per_child=self.documents_per_process,
                    mp_context=multiprocessing.get_context("spawn"))
            return self._executor

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a child process (both must pickle); its result."""
        executor = self._pool()
        try:
            return executor.submit(function, *args).result()
        except BrokenProcessPool as exc:
            # Every call waiting on this pool fails alike; the next call gets a new one.
            with self._lock:
                if self._executor is executor:
                    self._executor = None
            executor.shutdown(wait=False, cancel_futures=True)
            log.error("a PDF rendering process died; starting a new one")
            raise RenderCrashed("the rendering process died (a crash in a C library, or "
                                "it was killed); the document was not rendered") from exc

    def close(self) -> None:
        """Stop the children (waits for renders under way)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
