"""The append-only, hash-chained log of everything that matters to a customer or an auditor.

Each event stores the hash of the one before it, so removing or editing any
row breaks the chain from there on; :func:`verify_chain` finds the first break.
Appending takes a row lock on the chain's head, so concurrent writers on
PostgreSQL queue up instead of forking the chain (SQLite serialises writers).
:func:`record_events` appends many events under one such lock, for large runs.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from distribution.bulk import insert_rows
from distribution.models import Base
from distribution.sqltypes import UTCDateTime, utcnow

GENESIS_HASH = "0" * 64


class Event(Base):
    """One step in the life of a subject (an invoice, a document, a delivery...)."""

    __tablename__ = "events"
    __table_args__ = (sa.Index("ix_events_subject", "subject_type", "subject_key", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_type: Mapped[str] = mapped_column(sa.String(32))
    subject_key: Mapped[str] = mapped_column(sa.String(128))
    kind: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    actor: Mapped[str] = mapped_column(sa.String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    # Not indexed: the chain is walked by id and nothing looks an event up by its hash;
    # a unique index over random hashes made bulk logging (a million-message run) slow
    # once it outgrew memory, and guarded nothing the chain itself does not.
    hash: Mapped[str] = mapped_column(sa.String(64))


class EventChainHead(Base):
    """The single row that points at the newest event; locked while appending."""

    __tablename__ = "event_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_hash: Mapped[str] = mapped_column(sa.String(64))
    count: Mapped[int]


def event_hash(prev_hash: str, subject_type: str, subject_key: str, kind: str,
               payload: dict[str, Any], actor: str, at: datetime) -> str:
    """SHA-256 over the previous hash and a canonical JSON form of the event."""
    body = json.dumps(
        [prev_hash, subject_type, subject_key, kind, payload, actor,
         at.astimezone(UTC).isoformat()],
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record_event(session: Session, subject_type: str, subject_key: str, kind: str,
                 payload: dict[str, Any] | None = None, *, actor: str) -> Event:
    """Append an event to the chain in the caller's transaction (flushes, never commits)."""
    # populate_existing: record_events moves the head with plain statements, so a head
    # this session loaded before may be stale.
    head = session.scalars(
        sa.select(EventChainHead).where(EventChainHead.id == 1).with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if head is None:
        head = EventChainHead(id=1, last_hash=GENESIS_HASH, count=0)
        session.add(head)
    payload = json.loads(json.dumps(payload or {}, default=str))  # stored exactly as hashed
    at = utcnow()
    event = Event(subject_type=subject_type, subject_key=subject_key, kind=kind,
                  payload=payload, actor=actor, at=at, prev_hash=head.last_hash)
    event.hash = event_hash(head.last_hash, subject_type, subject_key, kind, payload, actor, at)
    head.last_hash = event.hash
    head.count += 1
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True, slots=True)
class NewEvent:
    """One event to append with :func:`record_events`.

    ``payload`` is JSON-shaped (values JSON cannot hold are stored as their ``str``),
    and nested dictionaries have string keys. It may also be given already encoded,
    as the exact text :func:`canonical_json` makes of it: a run writes a million
    payloads of one shape and builds that text faster from parts encoded once.
    """

    subject_type: str
    subject_key: str
    kind: str
    payload: dict[str, Any] | str
    actor: str


_HEAD = EventChainHead.__table__
_EVENT_COLUMNS = ("subject_type", "subject_key", "kind", "payload", "actor", "at", "prev_hash",
                  "hash")

_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              default=str).encode

# Subject types, kinds and actors repeat: each is encoded once.
_name = functools.lru_cache(maxsize=1024)(_canonical)


def canonical_json(value: Any) -> str:
    """``value`` as the event log stores and hashes it: sorted keys, no spaces, UTF-8."""
    return _canonical(value)


def record_events(session: Session, events: Iterable[NewEvent]) -> int:
    """Append many events in order, in the caller's transaction; returns how many.

    The same chain as :func:`record_event` gives, built faster: the chain head is
    locked once, each hash is computed from the previous one in Python, and the
    rows go in with one bulk insert. The events share one timestamp. Payloads are
    stored as their canonical JSON, so what is stored is exactly what was hashed.
    The head is read and moved with plain statements (no ORM object): a send batch
    appends twice, and the dispatcher once per tick.
    """
    session.flush()  # a head that record_event added in this session is written first
    connection = session.connection()
    head_hash = connection.execute(
        sa.select(_HEAD.c.last_hash).where(_HEAD.c.id == 1).with_for_update()).scalar()
    if head_hash is None:
        connection.execute(sa.insert(_HEAD).values(id=1, last_hash=GENESIS_HASH, count=0))
        head_hash = GENESIS_HASH
    at = utcnow()
    # event_hash's JSON array, written out around the parts that change per event; the
    # result is byte for byte what event_hash computes (tested).
    at_json = _canonical(at.astimezone(UTC).isoformat())
    last = [head_hash]

    def rows() -> Iterator[tuple[Any, ...]]:
        prev = last[0]
        sha256 = hashlib.sha256
        shared, shared_json = None, ""  # events often share one payload object: encoded once
        for event in events:
            if type(event.payload) is str:  # encoded by the caller (see NewEvent)
                payload = event.payload
            elif event.payload is shared:
                payload = shared_json
            else:
                payload = event.payload
                if not all(type(key) is str for key in payload):
                    # Keys that are not strings become strings when stored, which changes
                    # the sort order: normalise first, as record_event does.
                    payload = json.loads(json.dumps(payload, default=str))
                payload = _canonical(payload)
                shared, shared_json = event.payload, payload
            key = event.subject_key
            key_json = f'"{key}"' if key.isascii() and key.isdigit() else _canonical(key)
            body = (f'["{prev}",{_name(event.subject_type)},{key_json},{_name(event.kind)},'
                    f"{payload},{_name(event.actor)},{at_json}]")
            digest = sha256(body.encode()).hexdigest()
            yield (event.subject_type, key, event.kind, payload, event.actor, at, prev, digest)
            prev = digest
        last[0] = prev

    # Rows are made as they are written; the payload goes in as the exact JSON text that
    # was hashed.
    count = insert_rows(session, Event.__table__, _EVENT_COLUMNS, rows())
    if count:
        connection.execute(sa.update(_HEAD).where(_HEAD.c.id == 1).values(
            last_hash=last[0], count=_HEAD.c.count + count))
    return count


def events_for(session: Session, subject_type: str, subject_key: str) -> list[Event]:
    """A subject's events, oldest first."""
    return list(session.scalars(
        sa.select(Event).where(Event.subject_type == subject_type,
                               Event.subject_key == subject_key).order_by(Event.id)
    ))


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where the chain is broken, and how."""

    event_id: int
    reason: str


def verify_chain(session: Session, batch_size: int = 5000) -> ChainBreak | None:
    """Check every event's hash and link; return the first break, or None when intact."""
    prev = GENESIS_HASH
    seen = 0
    for event in _all_events(session, batch_size):
        seen += 1
        if event.prev_hash != prev:
            return ChainBreak(event.id, "links to a different previous event (one was removed "
                                        "or reordered)")
        expected = event_hash(event.prev_hash, event.subject_type, event.subject_key, event.kind,
                              event.payload, event.actor, event.at)
        if expected != event.hash:
            return ChainBreak(event.id, "its content does not match its hash (it was edited)")
        prev = event.hash
    head = session.get(EventChainHead, 1, populate_existing=True)
    if head is not None and (head.last_hash != prev or head.count != seen):
        return ChainBreak(0, "the newest events are missing (the chain head points past them)")
    return None


def _all_events(session: Session, batch_size: int) -> Iterator[sa.Row]:
    # Plain rows, not ORM objects: a long chain must not fill the session's identity map.
    columns = [Event.id, Event.subject_type, Event.subject_key, Event.kind, Event.payload,
               Event.actor, Event.at, Event.prev_hash, Event.hash]
    last_id = 0
    while True:
        batch = session.execute(
            sa.select(*columns).where(Event.id > last_id).order_by(Event.id).limit(batch_size)
        ).all()
        if not batch:
            return
        yield from batch
        last_id = batch[-1].id
