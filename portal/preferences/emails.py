"""Email addresses a customer adds, verified by a link before Herald uses them.

Adding an address stores it as pending; a task, queued after the request's
commit, makes a random token, keeps only its SHA-256 and an expiry, and emails
the link. Following the link (and confirming, so a mail scanner fetching the
link verifies nothing) turns the address into a distribution ``Address``.
Removing one marks its distribution address dead with the reason and remembers
the removal, so a sync from the billing system's contacts does not bring it back.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.channels.base import ChannelName
from distribution.events import Event, record_event
from distribution.recipients import Address, Recipient, add_address, mark_dead
from distribution.sqltypes import utcnow
from portal.models import Customer, CustomerEmailAddress
from portal.recipients_sync import recipient_key

TOKEN_LIFETIME = timedelta(hours=48)
# A customer may ask for the link again, but not flood an inbox with them.
RESEND_INTERVAL = timedelta(minutes=2)
MAX_PENDING = 5
# Each addition emails someone: a signed-in account must not become a way to send mail to
# any address it likes, so additions are counted per customer per day.
MAX_ADDITIONS_PER_DAY = 10
REMOVED_REASON = "removed by the customer"


class EmailAddressError(ValueError):
    """The address cannot be added; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class ListedEmail:
    """One row of the page's address list."""

    email: str
    verified: bool
    address_id: int | None = None  # the distribution address, once verified
    pending_id: int | None = None  # the pending row, until then
    expired: bool = False


def token_digest(token: str) -> str:
    """The SHA-256 (hex) a token is stored and looked up by."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def listed_emails(session: Session, customer: Customer, recipient: Recipient) -> list[ListedEmail]:
    """Verified addresses (distribution's, working) then pending ones, for the page."""
    listed = [ListedEmail(a.value, True, address_id=a.id)
              for a in sorted(recipient.working_addresses(ChannelName.EMAIL), key=lambda a: a.id)]
    now = utcnow()
    for row in session.scalars(sa.select(CustomerEmailAddress).where(
            CustomerEmailAddress.customer_id == customer.id,
            CustomerEmailAddress.verified_at.is_(None),
            CustomerEmailAddress.removed_at.is_(None)).order_by(CustomerEmailAddress.id)):
        listed.append(ListedEmail(row.email, False, pending_id=row.id,
                                  expired=row.token_expires_at is not None
                                  and row.token_expires_at < now))
    return listed


def add_email(session: Session, customer: Customer, recipient: Recipient, email: str, *,
              actor: str) -> CustomerEmailAddress:
    """Add ``email`` as pending (or pending again after a removal); the caller queues the mail.

    Raises :class:`EmailAddressError` when it is already in use or too many wait.
    """
    email = email.strip().lower()
    if any(a.value == email for a in recipient.working_addresses(ChannelName.EMAIL)):
        raise EmailAddressError("already verified")
    row = session.scalars(sa.select(CustomerEmailAddress).where(
        CustomerEmailAddress.customer_id == customer.id,
        CustomerEmailAddress.email == email)).first()
    if row is not None and row.pending:
        raise EmailAddressError("already pending")
    pending = session.scalar(sa.select(sa.func.count()).select_from(CustomerEmailAddress).where(
        CustomerEmailAddress.customer_id == customer.id,
        CustomerEmailAddress.verified_at.is_(None), CustomerEmailAddress.removed_at.is_(None)))
    if pending >= MAX_PENDING:
        raise EmailAddressError("too many pending")
    added_today = session.scalar(sa.select(sa.func.count()).select_from(Event).where(
        Event.subject_type == "recipient", Event.subject_key == recipient.recipient_key,
        Event.kind == "email.added", Event.at > utcnow() - timedelta(days=1)))
    if added_today >= MAX_ADDITIONS_PER_DAY:
        raise EmailAddressError("too many today")
    if row is None:
        row = CustomerEmailAddress(customer_id=customer.id, email=email)
        session.add(row)
    row.verified_at = row.removed_at = row.token_sha256 = row.token_expires_at = None
    row.verification_sent_at = None
    session.flush()
    record_event(session, "recipient", recipient.recipient_key, "email.added",
                 {"email_id": row.id, "verified": False}, actor=actor)
    return row


def new_token(session: Session, row: CustomerEmailAddress) -> str | None:
    """A fresh verification token for a pending row (earlier ones stop working).

    ``None`` when the row is no longer pending. Only the digest is stored.
    """
    if not row.pending:
        return None
    token = secrets.token_urlsafe(32)
    row.token_sha256 = token_digest(token)
    row.token_expires_at = utcnow() + TOKEN_LIFETIME
    row.verification_sent_at = utcnow()
    session.flush()
    return token


def may_resend(row: CustomerEmailAddress) -> bool:
    """True when the last link went out long enough ago to send another."""
    return row.verification_sent_at is None or utcnow() - row.verification_sent_at >= \
        RESEND_INTERVAL


def pending_by_token(session: Session, token: str) -> CustomerEmailAddress | None:
    """The pending row the token belongs to, if the token is current and not expired."""
    if not token or len(token) > 128:
        return None
    row = session.scalars(sa.select(CustomerEmailAddress).where(
        CustomerEmailAddress.token_sha256 == token_digest(token))).first()
    if row is None or not row.pending or row.token_expires_at is None \
            or row.token_expires_at < utcnow():
        return None
    return row


def verify(session: Session, row: CustomerEmailAddress, recipient: Recipient, *,
           actor: str) -> Address:
    """Mark the row verified and make it a distribution address (the token is used up)."""
    row.verified_at = utcnow()
    row.token_sha256 = None
    row.token_expires_at = None
    address = add_address(session, recipient, ChannelName.EMAIL, row.email, verified=True,
                          actor=actor)
    record_event(session, "recipient", recipient.recipient_key, "email.verified",
                 {"email_id": row.id, "address_id": address.id}, actor=actor)
    return address


def remove_verified(session: Session, customer: Customer, address: Address, *,
                    actor: str) -> None:
    """Stop using a verified email address and remember the customer removed it."""
    row = session.scalars(sa.select(CustomerEmailAddress).where(
        CustomerEmailAddress.customer_id == customer.id,
        CustomerEmailAddress.email == address.value)).first()
    if row is None:
        row = CustomerEmailAddress(customer_id=customer.id, email=address.value)
        session.add(row)
    row.removed_at = utcnow()
    row.token_sha256 = row.token_expires_at = None
    mark_dead(session, address, REMOVED_REASON, actor=actor)
    session.flush()


def remove_pending(session: Session, row: CustomerEmailAddress, *, actor: str) -> None:
    """Withdraw a pending address; its link stops working."""
    row.removed_at = utcnow()
    row.token_sha256 = row.token_expires_at = None
    record_event(session, "recipient", recipient_key(row.customer_id), "email.withdrawn",
                 {"email_id": row.id}, actor=actor)
    session.flush()


def removed_emails(session: Session, customer: Customer) -> set[str]:
    """Addresses the customer removed (a contacts sync must not revive them)."""
    return set(session.scalars(sa.select(CustomerEmailAddress.email).where(
        CustomerEmailAddress.customer_id == customer.id,
        CustomerEmailAddress.removed_at.is_not(None))))


def verified_emails(session: Session, customer: Customer) -> list[str]:
    """Addresses the customer added and verified in the portal."""
    return list(session.scalars(sa.select(CustomerEmailAddress.email).where(
        CustomerEmailAddress.customer_id == customer.id,
        CustomerEmailAddress.verified_at.is_not(None),
        CustomerEmailAddress.removed_at.is_(None)).order_by(CustomerEmailAddress.id)))
