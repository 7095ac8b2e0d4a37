"""The worker's webhook task: every minute, turn new events into deliveries and send what is due.

Registered on the same Huey as the sends (:func:`register_webhook_tasks`); the API and
the console also queue one pass after they commit a replay, so it need not wait for the
minute. Two passes at once are harmless: the cursor row is locked while fanning out,
and each delivery is claimed by one conditional update.
"""

from __future__ import annotations

import logging

from huey import Huey, crontab
from huey.api import TaskWrapper
from sqlalchemy.orm import Session, sessionmaker

from distribution.webhook_sender import WebhookSender

log = logging.getLogger(__name__)

# Between sends (100) and bulk rendering (0): alerts should not wait behind a PDF backlog.
WEBHOOK_PRIORITY = 60
# A pass stops starting requests after this long, so one slow receiver cannot keep a
# worker thread from the rest of the queue; the next minute's pass goes on.
PASS_BUDGET_SECONDS = 45.0


def register_webhook_tasks(huey: Huey, make_session: sessionmaker[Session]) -> TaskWrapper:
    """Register the periodic ``webhooks`` pass on ``huey``; returns the task to queue one more."""
    senders: list[WebhookSender] = []

    def sender() -> WebhookSender:
        if not senders:  # one HTTP session (connection pool) per worker process
            senders.append(WebhookSender(make_session))
        return senders[0]

    def run_pass() -> dict[str, int]:
        made = sender().fan_out()
        counts = sender().run(PASS_BUDGET_SECONDS)
        if made or any(counts.values()):
            log.info("webhooks: %d deliveries made, %s", made, counts)
        return {"made": made, **counts}

    @huey.periodic_task(crontab(minute="*"), name="webhooks", priority=WEBHOOK_PRIORITY)
    def webhooks() -> dict[str, int]:
        return run_pass()

    # Huey retries nothing: the deliveries' own backoff decides.
    @huey.task(name="webhooks_now", retries=0, priority=WEBHOOK_PRIORITY)
    def webhooks_now() -> dict[str, int]:
        return run_pass()

    return webhooks_now
