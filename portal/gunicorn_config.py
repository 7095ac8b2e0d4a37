"""gunicorn settings for Herald's web processes.

    gunicorn -c python:portal.gunicorn_config 'portal:create_app()'

Threaded workers (``gthread``), not gunicorn's default ``sync`` ones. A browser keeps its
connection open between clicks, and so does a reverse proxy that pools upstream
connections; a sync worker closes every connection after one response, and the client's
next connection then holds that worker, blocked, until the request arrives. With 50
customers reading their invoices a second apart, four sync workers spent most of their
time waiting on silent sockets: a p95 of 684 ms for pages that need 15 ms of CPU
(docs/benchmarks.md). A gthread worker parks idle kept-alive connections in a poller and
gives its threads only to requests that have arrived.

Each setting can still be given on the command line, which wins. The defaults read:

- ``WEB_CONCURRENCY``: worker processes (default: two per CPU core);
- ``HERALD_WEB_THREADS``: threads per process (default 4: pages wait on the database
  for part of their time, during which another thread of the process can run);
- ``HERALD_BIND``: the address to listen on (default ``0.0.0.0:8000``).

A process runs Python on one core at a time and its threads take turns on it: on two
cores under 50 readers, four processes of four threads answered the invoice list with a
p95 of 43-51 ms where two processes of eight threads took 65-197 ms (docs/benchmarks.md).
"""

from __future__ import annotations

import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1))
threads = int(os.environ.get("HERALD_WEB_THREADS") or 4)
bind = [os.environ.get("HERALD_BIND") or "0.0.0.0:8000"]
# Longer than a reader's pause between clicks (and than a proxy's idle upstream timeout
# should be), so a kept-alive connection is reused rather than opened again.
keepalive = 15
# A request that runs this long is stuck (the slowest page, a CSV export of a big search,
# takes a few seconds); the worker is replaced and its connections closed.
timeout = 120
graceful_timeout = 30
# Without --preload each worker imports the app itself, so a new worker after a crash or
# a `kill -HUP` reload picks up new code and settings.
preload_app = False
