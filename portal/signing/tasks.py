"""The periodic task that reminds signers and expires requests (every 15 minutes)."""

from __future__ import annotations

import logging

from flask import Flask
from huey import crontab
from huey.api import TaskWrapper

from portal.db import get_database
from portal.queue import get_huey
from portal.signing.context import SigningContext
from portal.signing.reminders import ReminderResult, remind_and_expire

log = logging.getLogger(__name__)
ACTOR = "herald:signing-reminders"
EXTENSION_KEY = "herald.signing.reminders"


def register_tasks(app: Flask) -> None:
    """Register the reminder task on the app's queue."""
    huey = get_huey(app)
    database = get_database(app)

    @huey.periodic_task(crontab(minute="*/15"), name="signature_reminders")
    def signature_reminders() -> dict[str, int]:
        with app.app_context(), database.session_scope() as session:
            result: ReminderResult = remind_and_expire(
                session, context=SigningContext.from_app(app), actor=ACTOR)
        log.info("signature requests: %d reminded, %d expired", result.reminded,
                 result.expired)
        return {"reminded": result.reminded, "expired": result.expired}

    app.extensions[EXTENSION_KEY] = signature_reminders


def reminders_task(app: Flask) -> TaskWrapper:
    """The periodic ``signature_reminders`` task registered on the app's queue."""
    return app.extensions[EXTENSION_KEY]
