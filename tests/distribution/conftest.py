"""Fixtures and builders for the distribution engine's tests.

Most engine functions take a session and never commit, so their tests use the
rolled-back ``session`` fixture. ``tick``, ``Sender`` and ``run_dispatcher``
open and commit their own sessions: their tests use ``own_db``, a migrated
database of the test's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from distribution import sealing
from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, DeliveryState
from distribution.preferences import ensure_message_types
from distribution.recipients import Recipient, add_address, upsert_recipient
from distribution.runs import MessageSpec, RunSummary, WaveOptions, create_run
from portal.db import make_engine
from portal.migrate import upgrade

PUSH_SUBSCRIPTION = ('{"endpoint": "https://push.example/abc", "keys": {"p256dh": "x", '
                     '"auth": "y"}}')


@pytest.fixture(autouse=True, scope="session")
def sealing_key() -> None:
    """The engine's tests run without the app factory, which installs the sealing key in
    every Herald process (webhook endpoints' signing keys are sealed at rest)."""
    sealing.install("the distribution tests' secret key")


class Clock:
    """A controllable clock to monkeypatch over a module's ``utcnow``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


# A Monday, 12:00 UTC: 13:00 in Brussels (inside 8-20), 21:00 in Tokyo (outside).
MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def own_db(databases) -> Iterator[sessionmaker[Session]]:
    """Sessions on a migrated database of the test's own (for code that commits)."""
    engine = make_engine(databases.new_url())
    upgrade(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def make_recipient(session: Session, key: str = "r1", *, name: str = "Ann Peeters",
                   language: str = "en", time_zone: str = "Europe/Brussels",
                   email: str | None = "ann@example.com", peppol: str | None = None,
                   push: str | None = None, fcm: str | None = None) -> Recipient:
    """A recipient with the given addresses (email by default), flushed."""
    ensure_message_types(session)
    recipient = upsert_recipient(session, key, name=name, language=language,
                                 time_zone=time_zone)
    for channel, value in ((ChannelName.EMAIL, email), (ChannelName.PEPPOL, peppol),
                           (ChannelName.WEB_PUSH, push), (ChannelName.FCM, fcm)):
        if value is not None:
            add_address(session, recipient, channel, value, actor="test")
    session.flush()
    return recipient


def spec(key: str, subject: str | None = None, **parameters: object) -> MessageSpec:
    """An invoice message spec for recipient ``key`` with every template parameter."""
    values = {"customer_name": "Ann Peeters", "seller_name": "Testing Telecom",
              "number": f"INV-{key}", "amount": "€ 120,15", "due_date": "31 December 2026",
              "link": f"https://portal.herald.test/invoices/INV-{key}"}
    values.update(parameters)
    return MessageSpec(recipient_key=key, subject_key=subject or f"invoice:{key}",
                       parameters=values, link=values["link"])


def run_for(session: Session, keys: list[str], *, message_type: str = "invoice",
            **options: object) -> RunSummary:
    """A run with one message per recipient key."""
    return create_run(session, name="test run", message_type=message_type,
                      specs=[spec(key) for key in keys], selection={"test": True},
                      created_by="ops@test", options=WaveOptions(**options))


def deliveries_of(session: Session, **where: object) -> list[Delivery]:
    """Deliveries, fresh from the database, in id order."""
    session.expire_all()
    query = sa.select(Delivery).order_by(Delivery.id)
    for name, value in where.items():
        query = query.where(getattr(Delivery, name) == value)
    return list(session.scalars(query))


def set_state(session: Session, delivery_id: int, state: DeliveryState, **values: object) -> None:
    """Put a delivery in ``state`` directly (test setup, no event)."""
    session.execute(sa.update(Delivery).where(Delivery.id == delivery_id)
                    .values(state=state, **values).execution_options(synchronize_session=False))
