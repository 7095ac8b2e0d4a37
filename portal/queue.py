"""Binds the task queue to the app: one Huey instance per app, tasks registered once."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, current_app
from huey import Huey

from distribution.documents import make_store
from distribution.sending import Sender
from distribution.webhook_tasks import register_webhook_tasks
from distribution.worker import Tasks, make_huey, register_tasks
from portal.channels import build_channels
from portal.config import Settings
from portal.db import get_database
from portal.sending_defaults import stored_sending_policy

EXTENSION_KEY = "herald.queue"


def init_app(app: Flask, settings: Settings) -> None:
    """Create the app's Huey instance from ``HUEY_URL`` and register distribution's tasks."""
    huey = make_huey(
        settings.huey_url, settings.instance_path, immediate=bool(app.config.get("HUEY_IMMEDIATE"))
    )
    make_session = get_database(app).sessionmaker

    def make_sender() -> Sender:
        return Sender(make_session, build_channels(settings),
                      make_store(settings.document_store, settings.instance_path),
                      stored_sending_policy(make_session,
                                            timedelta(seconds=settings.send_lease_seconds)))

    tasks = register_tasks(huey, make_session, make_sender)
    app.extensions[EXTENSION_KEY] = (huey, tasks)
    app.extensions["herald.webhooks_now"] = register_webhook_tasks(huey, make_session)

    from portal import tasks as portal_tasks  # it imports this module for get_huey

    portal_tasks.init_app(app, settings)


def get_huey(app: Flask | None = None) -> Huey:
    """The app's Huey instance."""
    return (app or current_app).extensions[EXTENSION_KEY][0]


def get_tasks(app: Flask | None = None) -> Tasks:
    """Handles of the tasks registered on the app's queue."""
    return (app or current_app).extensions[EXTENSION_KEY][1]
