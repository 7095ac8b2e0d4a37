"""The sending defaults stored by the settings page, as the rest of Herald reads them.

Kept apart from the ops console (portal.ops.settings_store) so that the task queue
can build its retry policy without importing the web views.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.sending import SendingPolicy
from portal.models.delivery_defaults import SINGLETON_ID, DeliveryDefaults

log = logging.getLogger(__name__)


def delivery_defaults(session: Session) -> DeliveryDefaults:
    """The stored sending defaults, or Herald's built-in ones (a row not yet added)."""
    found = session.get(DeliveryDefaults, SINGLETON_ID)
    if found is not None:
        return found
    return DeliveryDefaults(id=SINGLETON_ID, window_start_hour=8, window_end_hour=20,
                            weekends=False, holidays=[], window_time_zone=None,
                            max_attempts=8, first_backoff_seconds=30, max_backoff_seconds=7200)


def sending_policy(session: Session, send_lease: timedelta) -> SendingPolicy:
    """The retry policy workers use: the stored one, with the configured send lease."""
    stored = delivery_defaults(session)
    return SendingPolicy(max_attempts=stored.max_attempts,
                         first_backoff=timedelta(seconds=stored.first_backoff_seconds),
                         max_backoff=timedelta(seconds=stored.max_backoff_seconds),
                         send_lease=send_lease)


def stored_sending_policy(make_session, send_lease: timedelta) -> SendingPolicy:
    """:func:`sending_policy` in a session of its own; the built-in policy (and a warning)
    when the database cannot say, so that a worker started before ``herald db upgrade``
    still sends."""
    try:
        with make_session() as session:
            return sending_policy(session, send_lease)
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        log.warning("stored retry policy unreadable (%s); using the built-in one",
                    type(exc).__name__)
        return SendingPolicy(send_lease=send_lease)
