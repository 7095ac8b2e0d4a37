"""Sending one delivery, and recording what happened.

The send task claims the delivery (``released -> sending``, with a lease),
builds the rendered message, calls the channel outside any transaction, then
records the outcome: ``sent``; back to ``pending`` with exponential backoff on
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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

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
    idempotency_key_for,
    transition,
)
from distribution.documents import DocumentStore
from distribution.events import record_event
from distribution.preferences import resolve
from distribution.recipients import mark_dead
from distribution.sqltypes import utcnow
from distribution.templates import fallback_notice, render

log = logging.getLogger(__name__)
ACTOR = "worker"
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

    def backoff(self, attempts: int, retry_after: float | None = None) -> timedelta:
        """Exponential backoff with ±10 % jitter, at least what the peer asked for."""
        delay = min(self.first_backoff * (2 ** max(attempts - 1, 0)), self.max_backoff)
        delay = delay * random.uniform(0.9, 1.1)  # noqa: S311 - spreading retries, not secrecy
        if retry_after:
            delay = max(delay, timedelta(seconds=retry_after))
        return delay


@dataclass
class Sender:
    """Everything a send task needs: sessions, channels, documents and the policy."""

    make_session: sessionmaker[Session]
    channels: dict[ChannelName, Channel]
    store: DocumentStore
    policy: SendingPolicy = field(default_factory=SendingPolicy)

    def send(self, delivery_id: int) -> DeliveryState | None:
        """Send one released delivery; returns its new state, or None if not ours to send."""
        claimed = self._patiently(delivery_id, lambda: self._claim(delivery_id))
        if claimed is None:
            return None
        channel_name, channel, attempts, outgoing, build_error = claimed
        if build_error is not None:
            return self._record_error(delivery_id, attempts, build_error)
        if channel is None:
            error = ChannelError(ErrorKind.PERMANENT,
                                 f"the {channel_name.value} channel is not configured")
            return self._record_error(delivery_id, attempts, error)
        try:
            receipt = channel.send(outgoing)
        except ChannelError as error:
            return self._record_error(delivery_id, attempts, error)
        except Exception as error:  # an adapter bug must not leave the delivery stuck
            log.exception("channel %s crashed on delivery %s", channel_name, delivery_id)
            return self._record_error(delivery_id, attempts, ChannelError(
                ErrorKind.RETRYABLE, f"unexpected {type(error).__name__} in the channel"))
        return self._patiently(delivery_id, lambda: self._record_sent(delivery_id, receipt))

    def _patiently(self, delivery_id: int, step: Callable[[], _T]) -> _T:
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

    def _claim(self, delivery_id: int) -> tuple | None:
        """``released -> sending``, and the message built; None when not ours to send."""
        with self.make_session() as session, session.begin():
            lease = utcnow() + self.policy.send_lease
            if not transition(session, delivery_id, DeliveryState.RELEASED, DeliveryState.SENDING,
                              event="delivery.sending", actor=ACTOR, lease_until=lease,
                              attempts=Delivery.attempts + 1):
                return None
            delivery = session.get(Delivery, delivery_id)
            channel_name = delivery.channel
            channel = self.channels.get(channel_name)
            attempts = delivery.attempts
            build_error: ChannelError | None = None
            outgoing = None
            try:
                outgoing = self._outgoing(session, delivery)
            except sa.exc.SQLAlchemyError:
                raise  # the database, not the message: the reconciler retries it
            except ChannelError as error:  # e.g. the PDF is still being rendered
                build_error = error
            except Exception as error:  # a template or document that can never work
                # Rolling back would leave it released, to be requeued and fail forever.
                log.exception("delivery %s cannot be built", delivery_id)
                build_error = ChannelError(
                    ErrorKind.PERMANENT, f"the message cannot be built: {type(error).__name__}: "
                                         f"{error}")
        return channel_name, channel, attempts, outgoing, build_error

    def _record_sent(self, delivery_id: int, receipt: Receipt) -> DeliveryState | None:
        with self.make_session() as session, session.begin():
            # The peer has it, whatever happened meanwhile: a slow send whose lease expired
            # may already be in doubt (or requeued by the reconciler); it is sent all the same.
            done = transition(session, delivery_id, SENT_FROM, DeliveryState.SENT,
                              event="delivery.sent", actor=ACTOR,
                              payload={"provider_message_id": receipt.provider_message_id,
                                       **receipt.detail},
                              provider_message_id=receipt.provider_message_id,
                              lease_until=None, last_error=None, sent_at=utcnow())
        return DeliveryState.SENT if done else None

    def _outgoing(self, session: Session, delivery: Delivery) -> OutgoingMessage:
        message = delivery.message
        recipient = message.recipient
        parameters = {"link": message.link or "", **message.parameters}
        if delivery.fallback_for:
            parameters["fallback_notice"] = fallback_notice(
                recipient.language, CHANNEL_LABELS[ChannelName(delivery.fallback_for)],
                delivery.fallback_reason or "")
        rendered = render(message.message_type, recipient.language, parameters)
        return OutgoingMessage(
            delivery_id=delivery.id, idempotency_key=delivery.idempotency_key,
            message_type=message.message_type,
            address=delivery.address.value if delivery.address else recipient.recipient_key,
            recipient_name=recipient.name, language=recipient.language,
            subject=rendered.subject, text=rendered.text, html=rendered.html,
            link=message.link, attachments=tuple(self._attachments(session, delivery)),
            data={"message_type": message.message_type, "delivery_id": str(delivery.id),
                  **{k: str(v) for k, v in message.parameters.items()
                     if k in ("number", "amount", "due_date")}},
        )

    def _attachments(self, session: Session, delivery: Delivery) -> list[Attachment]:
        message = delivery.message
        number = str(message.parameters.get("number", message.id))
        wanted: list[str] = []
        if delivery.channel is ChannelName.EMAIL:
            wanted = resolve(session, message.recipient, message.message_type).email_attachments
        elif delivery.channel is ChannelName.PEPPOL:
            wanted = ["ubl"]
        files = []
        if "pdf" in wanted and message.ubl_sha256 and not message.pdf_sha256:
            # Issued, but its PDF is rendered in the background: wait for it rather than
            # send an email without the PDF the customer asked for.
            raise ChannelError(ErrorKind.RETRYABLE, "the PDF is still being rendered",
                               retry_after=60)
        if "pdf" in wanted and message.pdf_sha256:
            files.append(Attachment(f"{number}.pdf", "application/pdf",
                                    self.store.get(session, message.pdf_sha256)))
        if "ubl" in wanted and message.ubl_sha256:
            files.append(Attachment(f"{number}.xml", "application/xml",
                                    self.store.get(session, message.ubl_sha256)))
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
