"""Sending deliveries, and recording what happened.

A send task takes a batch of delivery ids (about 100; :meth:`Sender.send` is the
batch of one). It claims them in one transaction (one conditional ``UPDATE ...
WHERE state = 'released' RETURNING id`` with a lease, and their events written in
bulk), builds the rendered messages, calls the channel outside any transaction
for each, then records the outcomes: the sent ones together in one transaction
(one conditional ``UPDATE``), each failure on its own as below. A batch whose
sends take long records what it has every ``SendingPolicy.record_every`` and
renews the lease of the deliveries it has not sent yet; one the reconciler took
meanwhile is left to it. Outcomes are: ``sent``; back to ``pending`` with exponential backoff on
a retryable error; ``failed`` on a permanent one; or, when the address is dead,
``failed`` plus the address pruned and a fallback delivery on the customer's
next channel. A worker that dies mid-send leaves the lease to expire: the
reconciler then marks the delivery ``in_doubt`` (see :mod:`distribution.reconciler`).

Each database step is retried for a while when the database cannot be reached
(a restart, a failover): giving up on the claim would leave the delivery waiting
out its release lease, and giving up on recording a send the peer accepted would
make it ``in_doubt`` and send it a second time.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from distribution.bulk import among, id_value_pairs
from distribution.channels.base import (
    Attachment,
    Channel,
    ChannelError,
    ChannelName,
    ErrorKind,
    OutgoingMessage,
    Receipt,
)
from distribution.deliveries import (
    Delivery,
    DeliveryState,
    Message,
    delivery_key,
    idempotency_key_for,
    transition,
)
from distribution.documents import DocumentStore
from distribution.events import NewEvent, record_event, record_events
from distribution.preferences import (
    Preference,
    chosen_preference,
    email_attachments_of,
    resolve,
)
from distribution.recipients import Address, Recipient, mark_dead
from distribution.sqltypes import utcnow
from distribution.template_store import active_overrides
from distribution.templates import fallback_notice, render
from einvoice import embed_pdf

log = logging.getLogger(__name__)
ACTOR = "worker"
# A message parameter: true when the recipient wants the PDF embedded in the UBL sent to
# them (Peppol, or the UBL attached to an email).
EMBED_PDF_IN_UBL = "embed_pdf_in_ubl"
_T = TypeVar("_T")

CHANNEL_LABELS = {ChannelName.EMAIL: "email", ChannelName.WEB_PUSH: "browser notification",
                  ChannelName.FCM: "the mobile app", ChannelName.PORTAL: "the portal",
                  ChannelName.PEPPOL: "Peppol e-invoicing"}


# States a delivery may be in when its send succeeds: ``sending``, or moved on by the
# reconciler after its lease expired during a slow send.
SENT_FROM = (DeliveryState.SENDING, DeliveryState.IN_DOUBT, DeliveryState.PENDING,
             DeliveryState.RELEASED)


@dataclass
class SendingPolicy:
    """Retries, backoff and leases."""

    max_attempts: int = 8
    first_backoff: timedelta = timedelta(seconds=30)
    max_backoff: timedelta = timedelta(hours=2)
    send_lease: timedelta = timedelta(minutes=2)
    # How long one database step keeps trying while the database is unreachable.
    database_patience: timedelta = timedelta(seconds=30)
    # A batch records its sent deliveries (and renews the rest's lease) at least this often.
    record_every: timedelta = timedelta(seconds=2)

    def backoff(self, attempts: int, retry_after: float | None = None) -> timedelta:
        """Exponential backoff with ±10 % jitter, at least what the peer asked for."""
        delay = min(self.first_backoff * (2 ** max(attempts - 1, 0)), self.max_backoff)
        delay = delay * random.uniform(0.9, 1.1)  # noqa: S311 - spreading retries, not secrecy
        if retry_after:
            delay = max(delay, timedelta(seconds=retry_after))
        return delay


@dataclass(slots=True)
class _Claimed:
    """A delivery this worker claimed: what its message is made of, or why it cannot be built.

    The database part (``row``, ``attachments``) is read in the claim's transaction;
    the message is rendered after commit, so that no lock is held while rendering
    (on SQLite a transaction holds the database's one write lock).
    """

    delivery_id: int
    channel_name: ChannelName
    channel: Channel | None
    attempts: int
    row: sa.Row | None
    attachments: tuple[Attachment, ...] = ()
    build_error: ChannelError | None = None


# What building a message reads, in one query per batch: plain rows, no ORM objects.
_CLAIM_COLUMNS = (
    Delivery.id, Delivery.channel, Delivery.attempts, Delivery.idempotency_key,
    Delivery.fallback_for, Delivery.fallback_reason, Delivery.message_id, Delivery.address_id,
)
_MESSAGE_COLUMNS = (
    Address.value.label("address"), Message.message_type, Message.parameters, Message.link,
    Message.ubl_sha256, Message.pdf_sha256, Message.recipient_id, Recipient.recipient_key,
    Recipient.name, Recipient.language,
)


class _BatchResolutions:
    """What the emails of a batch carry, by their recipients' preferences.

    Read on first need (an email whose message has a document to attach) in one
    query for the whole batch: only the columns that decide, as plain rows.
    """

    def __init__(self, session: Session, recipient_ids: set[int]) -> None:
        self.session = session
        self.recipient_ids = recipient_ids
        self.preferences: dict[int, dict[str, sa.Row]] | None = None

    def email_attachments(self, row: sa.Row) -> list[str]:
        """What to attach to an email of the message in ``row``, as :func:`resolve` says."""
        if self.preferences is None:
            self.preferences = {}
            for preference in self.session.execute(sa.select(
                    Preference.recipient_id, Preference.message_type,
                    Preference.email_attachments).where(
                    among(self.session, Preference.recipient_id, self.recipient_ids))):
                self.preferences.setdefault(preference.recipient_id, {})[
                    preference.message_type] = preference
        return email_attachments_of(chosen_preference(
            self.preferences.get(row.recipient_id, {}), row.message_type))


def _cannot_build(delivery_id: int, error: Exception) -> ChannelError:
    """The permanent error of a message that can never be built (a template, a document)."""
    log.exception("delivery %s cannot be built", delivery_id)
    return ChannelError(ErrorKind.PERMANENT,
                        f"the message cannot be built: {type(error).__name__}: {error}")


def _label(delivery_ids: Sequence[int]) -> str:
    """How log lines name a batch."""
    if len(delivery_ids) == 1:
        return str(delivery_ids[0])
    return f"{delivery_ids[0]}..{delivery_ids[-1]} ({len(delivery_ids)})" if delivery_ids else "-"


@dataclass
class Sender:
    """Everything a send task needs: sessions, channels, documents and the policy."""

    make_session: sessionmaker[Session]
    channels: dict[ChannelName, Channel]
    store: DocumentStore
    policy: SendingPolicy = field(default_factory=SendingPolicy)

    def send(self, delivery_id: int) -> DeliveryState | None:
        """Send one released delivery; returns its new state, or None if not ours to send."""
        return self.send_batch([delivery_id])[delivery_id]

    def send_batch(self, delivery_ids: Sequence[int]) -> dict[int, DeliveryState | None]:
        """Send released deliveries; their new states, None for those not ours to send."""
        results: dict[int, DeliveryState | None] = dict.fromkeys(delivery_ids)
        label = _label(delivery_ids)
        claimed = self._patiently(label, lambda: self._claim_batch(list(results)))
        sent: list[tuple[int, Receipt]] = []
        given_up: set[int] = set()  # taken by the reconciler after their lease expired
        checkpoint = time.monotonic() + self.policy.record_every.total_seconds()
        for position, item in enumerate(claimed):
            if time.monotonic() >= checkpoint:
                # A slow batch: keep what was sent safe, and keep the rest's lease alive.
                self._record_sent_batch(sent, results)
                sent = []
                rest = [later.delivery_id for later in claimed[position:]
                        if later.delivery_id not in given_up]
                kept = self._patiently(label, lambda rest=rest: self._renew_leases(rest))
                given_up.update(set(rest) - kept)
                checkpoint = time.monotonic() + self.policy.record_every.total_seconds()
            if item.delivery_id in given_up:
                continue  # no longer ours: the reconciler decides what happens to it
            outcome = self._send_one(item)
            if isinstance(outcome, Receipt):
                sent.append((item.delivery_id, outcome))
            else:
                results[item.delivery_id] = self._record_error(
                    item.delivery_id, item.attempts, outcome)
        self._record_sent_batch(sent, results)
        return results

    def _send_one(self, item: _Claimed) -> Receipt | ChannelError:
        """Render and send one claimed delivery; the receipt, or the error to record."""
        if item.build_error is not None:
            return item.build_error
        try:
            outgoing = self._outgoing(item.row, item.attachments)
        except Exception as error:  # a template that can never work
            # Leaving it sending would only make it in doubt and fail again, forever.
            return _cannot_build(item.delivery_id, error)
        if item.channel is None:
            return ChannelError(ErrorKind.PERMANENT,
                                f"the {item.channel_name.value} channel is not configured")
        try:
            return item.channel.send(outgoing)
        except ChannelError as error:
            return error
        except Exception as error:  # an adapter bug must not leave the delivery stuck
            log.exception("channel %s crashed on delivery %s", item.channel_name,
                          item.delivery_id)
            return ChannelError(ErrorKind.RETRYABLE,
                                f"unexpected {type(error).__name__} in the channel")

    def _record_sent_batch(self, sent: list[tuple[int, Receipt]],
                           results: dict[int, DeliveryState | None]) -> None:
        if sent:
            done = self._patiently(_label([d for d, _ in sent]),
                                   lambda: self._record_sent(sent))
            for delivery_id, _ in sent:
                results[delivery_id] = DeliveryState.SENT if delivery_id in done else None

    def _patiently(self, delivery_id: int | str, step: Callable[[], _T]) -> _T:
        """Run one database step, again and again while the database is unreachable."""
        deadline = time.monotonic() + self.policy.database_patience.total_seconds()
        delay = 0.2
        while True:
            try:
                return step()
            except sa.exc.DBAPIError as error:
                # Retry a lost or refused connection only; a constraint or a bug is raised.
                lost = isinstance(error, sa.exc.OperationalError) or error.connection_invalidated
                if not lost or time.monotonic() + delay > deadline:
                    raise
                log.warning("delivery %s: the database is unreachable (%s); trying again in "
                            "%.1f s", delivery_id, type(error.orig).__name__, delay)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _claim_batch(self, delivery_ids: list[int]) -> list[_Claimed]:
        """``released -> sending`` for those still released, and their messages built."""
        with self.make_session() as session, session.begin():
            rows = self._claim_rows(session, delivery_ids)
            if not rows:
                return []
            resolutions = _BatchResolutions(session, {row.recipient_id for row in rows})
            claimed = [self._build(session, row, resolutions) for row in rows]
            # The events last: appending locks the chain's head until commit, and every
            # other writer waits for it.
            payload = {"from": [DeliveryState.RELEASED.value], "to": DeliveryState.SENDING.value}
            record_events(session, [NewEvent("delivery", delivery_key(row.id), "delivery.sending",
                                             payload, ACTOR) for row in rows])
            return claimed

    def _claim_rows(self, session: Session, delivery_ids: list[int]) -> list[sa.Row]:
        """Claim those still released (one conditional UPDATE); what building needs, by id."""
        now = utcnow()
        claim = (sa.update(Delivery)
                 .where(among(session, Delivery.id, delivery_ids),
                        Delivery.state == DeliveryState.RELEASED)
                 .values(state=DeliveryState.SENDING, lease_until=now + self.policy.send_lease,
                         attempts=Delivery.attempts + 1, updated_at=now))
        if session.get_bind().dialect.name == "postgresql":
            # One statement: the claimed rows' columns come back from the UPDATE itself, so
            # they are not looked up a second time.
            claimed = claim.returning(*_CLAIM_COLUMNS).cte("claimed")
            return session.execute(
                sa.select(*(claimed.c[column.key] for column in _CLAIM_COLUMNS),
                          *_MESSAGE_COLUMNS)
                .select_from(claimed)
                .join(Message, Message.id == claimed.c.message_id)
                .join(Recipient, Recipient.id == Message.recipient_id)
                .outerjoin(Address, Address.id == claimed.c.address_id)
                .order_by(claimed.c.id)).all()
        ids = list(session.scalars(claim.returning(Delivery.id)
                                   .execution_options(synchronize_session=False)))
        if not ids:
            return []
        return session.execute(
            sa.select(*_CLAIM_COLUMNS, *_MESSAGE_COLUMNS)
            .join(Message, Message.id == Delivery.message_id)
            .join(Recipient, Recipient.id == Message.recipient_id)
            .outerjoin(Address, Address.id == Delivery.address_id)
            .where(among(session, Delivery.id, ids)).order_by(Delivery.id)).all()

    def _build(self, session: Session, row: sa.Row,
               resolutions: _BatchResolutions) -> _Claimed:
        """The claimed delivery with its attachments, or the error that keeps it from being sent."""
        claimed = _Claimed(row.id, row.channel, self.channels.get(row.channel), row.attempts, row)
        try:
            claimed.attachments = tuple(self._attachments(session, row, resolutions))
        except sa.exc.SQLAlchemyError:
            raise  # the database, not the message: the reconciler retries it
        except ChannelError as error:  # e.g. the PDF is still being rendered
            claimed.build_error = error
        except Exception as error:  # a document that can never work
            claimed.build_error = _cannot_build(row.id, error)
        return claimed

    def _renew_leases(self, delivery_ids: list[int]) -> set[int]:
        """Extend the send lease of deliveries still ``sending``; returns those extended."""
        with self.make_session() as session, session.begin():
            return set(session.scalars(
                sa.update(Delivery)
                .where(among(session, Delivery.id, delivery_ids),
                       Delivery.state == DeliveryState.SENDING)
                .values(lease_until=utcnow() + self.policy.send_lease)
                .returning(Delivery.id)
                .execution_options(synchronize_session=False)))

    def _record_sent(self, sent: list[tuple[int, Receipt]]) -> set[int]:
        """``sent`` for all of them in one conditional UPDATE; returns the ids recorded."""
        receipts = dict(sent)
        with self.make_session() as session, session.begin():
            now = utcnow()
            # The peer has it, whatever happened meanwhile: a slow send whose lease expired
            # may already be in doubt (or requeued by the reconciler); it is sent all the same.
            sent_now = dict(state=DeliveryState.SENT, updated_at=now, sent_at=now,
                            lease_until=None, last_error=None)
            if session.get_bind().dialect.name == "postgresql":
                # One statement gives every row its own provider id.
                pairs = id_value_pairs(list(receipts), [
                    receipt.provider_message_id for receipt in receipts.values()],
                    Delivery.provider_message_id.type)
                done = sorted(session.scalars(
                    sa.update(Delivery)
                    .where(Delivery.id == pairs.c.id, Delivery.state.in_(SENT_FROM))
                    .values(provider_message_id=pairs.c.value, **sent_now)
                    .returning(Delivery.id)
                    .execution_options(synchronize_session=False)))
            else:
                done = self._record_sent_rows(session, receipts, sent_now)
            states = [state.value for state in SENT_FROM]
            record_events(session, [NewEvent(
                "delivery", delivery_key(delivery_id), "delivery.sent",
                {"from": states, "to": DeliveryState.SENT.value,
                 "provider_message_id": receipts[delivery_id].provider_message_id,
                 **receipts[delivery_id].detail}, ACTOR) for delivery_id in done])
        return set(done)

    @staticmethod
    def _record_sent_rows(session: Session, receipts: dict[int, Receipt],
                          sent_now: dict[str, object]) -> list[int]:
        """SQLite: the conditional UPDATE, then each provider id (cheap in-process)."""
        done = sorted(session.scalars(
            sa.update(Delivery)
            .where(among(session, Delivery.id, list(receipts)), Delivery.state.in_(SENT_FROM))
            .values(provider_message_id=None, **sent_now)
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)))
        # Rows just locked by the UPDATE above, in this transaction.
        provider_ids = [{"b_id": delivery_id,
                         "b_provider": receipts[delivery_id].provider_message_id}
                        for delivery_id in done
                        if receipts[delivery_id].provider_message_id is not None]
        if provider_ids:
            table = Delivery.__table__
            session.execute(sa.update(table).where(table.c.id == sa.bindparam("b_id"))
                            .values(provider_message_id=sa.bindparam("b_provider")),
                            provider_ids)
        return done

    def _outgoing(self, row: sa.Row, attachments: tuple[Attachment, ...]) -> OutgoingMessage:
        parameters = {"link": row.link or "", **row.parameters}
        if row.fallback_for:
            parameters["fallback_notice"] = fallback_notice(
                row.language, CHANNEL_LABELS[ChannelName(row.fallback_for)],
                row.fallback_reason or "")
        rendered = render(row.message_type, row.language, parameters, channel=row.channel,
                          overrides=active_overrides(self.make_session))
        return OutgoingMessage(
            delivery_id=row.id, idempotency_key=row.idempotency_key,
            message_type=row.message_type,
            address=row.address if row.address is not None else row.recipient_key,
            recipient_name=row.name, language=row.language,
            subject=rendered.subject, text=rendered.text, html=rendered.html,
            link=row.link, attachments=attachments,
            data={"message_type": row.message_type, "delivery_id": str(row.id),
                  **{k: str(v) for k, v in row.parameters.items()
                     if k in ("number", "amount", "due_date")}},
        )

    def _attachments(self, session: Session, row: sa.Row,
                     resolutions: _BatchResolutions) -> list[Attachment]:
        if not row.ubl_sha256 and not row.pdf_sha256:
            return []  # no document: nothing to attach, whatever the customer chose
        number = str(row.parameters.get("number", row.message_id))
        wanted: list[str] = []
        if row.channel is ChannelName.EMAIL:
            wanted = resolutions.email_attachments(row)
        elif row.channel is ChannelName.PEPPOL:
            wanted = ["ubl"]
        files = []
        # The recipient wants the PDF inside the UBL: derived here from the two stored
        # documents, as the stored UBL stays the canonical one (its PDF embeds it).
        pdf_in_ubl = "ubl" in wanted and bool(row.parameters.get(EMBED_PDF_IN_UBL))
        if ("pdf" in wanted or pdf_in_ubl) and row.ubl_sha256 and not row.pdf_sha256:
            # Issued, but its PDF is rendered in the background: wait for it rather than
            # send an email without the PDF the customer asked for.
            raise ChannelError(ErrorKind.RETRYABLE, "the PDF is still being rendered",
                               retry_after=60)
        pdf = (self.store.get(session, row.pdf_sha256)
               if row.pdf_sha256 and ("pdf" in wanted or pdf_in_ubl) else None)
        if "pdf" in wanted and pdf is not None:
            files.append(Attachment(f"{number}.pdf", "application/pdf", pdf))
        if "ubl" in wanted and row.ubl_sha256:
            ubl = self.store.get(session, row.ubl_sha256)
            if pdf_in_ubl and pdf is not None:
                ubl = embed_pdf(ubl, pdf, number)
            files.append(Attachment(f"{number}.xml", "application/xml", ubl))
        return files

    def _record_error(self, delivery_id: int, attempts: int,
                      error: ChannelError) -> DeliveryState | None:
        return self._patiently(delivery_id, lambda: self._record_error_once(
            delivery_id, attempts, error))

    def _record_error_once(self, delivery_id: int, attempts: int,
                           error: ChannelError) -> DeliveryState | None:
        payload = {"kind": error.kind.value, "reason": error.reason, "attempt": attempts}
        with self.make_session() as session, session.begin():
            if error.kind is ErrorKind.RETRYABLE and attempts < self.policy.max_attempts:
                retry_at = utcnow() + self.policy.backoff(attempts, error.retry_after)
                done = transition(session, delivery_id, DeliveryState.SENDING,
                                  DeliveryState.PENDING, event="delivery.retry_scheduled",
                                  actor=ACTOR, payload={**payload,
                                                        "next_attempt_at": retry_at.isoformat()},
                                  next_attempt_at=retry_at, lease_until=None,
                                  last_error=error.reason[:500])
                return DeliveryState.PENDING if done else None
            done = transition(session, delivery_id, DeliveryState.SENDING, DeliveryState.FAILED,
                              event="delivery.failed", actor=ACTOR, payload=payload,
                              lease_until=None, last_error=error.reason[:500])
            if done and error.kind is ErrorKind.ADDRESS_DEAD:
                self._prune_and_fall_back(session, delivery_id, error.reason)
            return DeliveryState.FAILED if done else None

    def _prune_and_fall_back(self, session: Session, delivery_id: int, reason: str) -> None:
        delivery = session.get(Delivery, delivery_id)
        if delivery.address is not None:
            mark_dead(session, delivery.address, reason, actor=ACTOR)
            session.flush()
        create_fallback(session, delivery, reason)


def create_fallback(session: Session, delivery: Delivery, reason: str) -> Delivery | None:
    """Add a delivery on the customer's next working channel, if the message has none there."""
    message: Message = delivery.message
    session.expire(message.recipient, ["addresses"])
    resolution = resolve(session, message.recipient, message.message_type)
    taken = {d.channel for d in session.scalars(
        sa.select(Delivery).where(Delivery.message_id == message.id))}
    choice = next((c for c in resolution.choices if c.channel not in taken), None)
    if choice is None:
        from distribution.preferences import ChannelChoice  # the portal inbox always works

        if ChannelName.PORTAL in taken:
            return None
        choice = ChannelChoice(ChannelName.PORTAL, None)
    fallback = Delivery(
        message_id=message.id, channel=choice.channel, address=choice.address,
        wave_id=delivery.wave_id, idempotency_key=idempotency_key_for(message, choice.channel),
        fallback_for=delivery.channel.value, fallback_reason=reason[:300])
    session.add(fallback)
    session.flush()
    record_event(session, "delivery", str(fallback.id), "delivery.fallback_created",
                 {"message_id": message.id, "channel": choice.channel.value,
                  "replaces_delivery": delivery.id, "reason": reason}, actor=ACTOR)
    return fallback
