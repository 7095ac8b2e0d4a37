"""The recovery page's work: a fresh link, emailed only to an address the customer verified.

Whoever asks gets the same answer whether or not the address matched, so the
page cannot be used to learn which addresses or invoices exist; requests are
counted per client and per invoice to keep it from being used to flood a
mailbox. A match reissues the link (every earlier link of the invoice is
revoked) and the email goes out from a task, after the transaction commits.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from distribution.channels.base import ChannelName
from distribution.recipients import Address, Recipient
from distribution.sqltypes import utcnow
from portal.models import Invoice, PayLinkRequest
from portal.pay.links import issue_link, link_url
from portal.recipients_sync import recipient_key

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=1)
MAX_PER_CLIENT = 10
MAX_PER_INVOICE = 5

# (subject, body) per language; {number}, {seller}, {link}, {expires}. No credentials asked.
TEXTS = {
    "en": ("Your link to invoice {number}",
           "Hello,\n\nYou asked for a new link to review and pay invoice {number} from "
           "{seller}. It works until {expires}; earlier links no longer work.\n\n{link}\n\n"
           "If you did not ask for it, you can ignore this message."),
    "nl": ("Uw link naar factuur {number}",
           "Beste klant,\n\nU vroeg een nieuwe link om factuur {number} van {seller} te "
           "bekijken en te betalen. Hij werkt tot {expires}; eerdere links werken niet meer."
           "\n\n{link}\n\nHebt u hier niet om gevraagd, dan mag u dit bericht negeren."),
    "es": ("Su enlace a la factura {number}",
           "Hola:\n\nHa pedido un enlace nuevo para consultar y pagar la factura {number} de "
           "{seller}. Funciona hasta el {expires}; los enlaces anteriores ya no funcionan."
           "\n\n{link}\n\nSi no lo ha pedido, puede ignorar este mensaje."),
}


class TooManyRequests(Exception):
    """This client or invoice asked for links too often; try again later."""


@dataclass(frozen=True, slots=True)
class LinkEmail:
    """A fresh link on its way to a verified address (the token is in ``link``, never logged)."""

    link_id: int
    address: str
    language: str
    subject: str
    text: str
    link: str


def client_digest(remote_addr: str | None) -> str:
    """What the rate limit counts a client by: a hash of its address."""
    return hashlib.sha256(f"pay-recovery:{remote_addr or '-'}".encode()).hexdigest()


def verified_emails(session: Session, invoice: Invoice) -> set[str]:
    """The customer's billing email addresses Herald may send to (lower case)."""
    emails = {c.email.strip().lower() for c in invoice.customer.contacts if c.email}
    emails |= {value.strip().lower() for value in session.scalars(
        sa.select(Address.value).join(Recipient, Recipient.id == Address.recipient_id).where(
            Recipient.recipient_key == recipient_key(invoice.customer),
            Address.channel == ChannelName.EMAIL, Address.verified_at.is_not(None),
            Address.dead_since.is_(None)))}
    return emails


def request_link(session: Session, invoice: Invoice | None, email: str, *, client: str,
                 public_url: str, days: int, format_expiry: Callable[..., str]
                 ) -> LinkEmail | None:
    """Handle one request for a fresh link; returns the email to send, or None.

    Raises :class:`TooManyRequests` past the limits, before looking at the
    address. Flushes, never commits.
    """
    since = utcnow() - WINDOW
    by_client = session.scalar(sa.select(sa.func.count()).select_from(PayLinkRequest).where(
        PayLinkRequest.client_sha256 == client, PayLinkRequest.created_at > since)) or 0
    by_invoice = 0
    if invoice is not None:
        by_invoice = session.scalar(sa.select(sa.func.count()).select_from(PayLinkRequest)
                                    .where(PayLinkRequest.invoice_id == invoice.id,
                                           PayLinkRequest.created_at > since)) or 0
    if by_client >= MAX_PER_CLIENT or by_invoice >= MAX_PER_INVOICE:
        raise TooManyRequests
    address = email.strip().lower()
    matched = invoice is not None and address in verified_emails(session, invoice)
    session.add(PayLinkRequest(invoice_id=invoice.id if invoice else None,
                               client_sha256=client, matched=matched))
    session.flush()
    if not matched:
        return None
    link, token = issue_link(session, invoice, days=days, purpose="recovery",
                             actor="portal:pay-recovery", revoke_previous=True)
    language = invoice.customer.language if invoice.customer.language in TEXTS else "en"
    subject, body = TEXTS[language]
    url = link_url(public_url, token)
    values = {"number": invoice.number, "seller": invoice.organisation.display_name,
              "link": url, "expires": format_expiry(link.expires_at, language)}
    return LinkEmail(link.id, address, language, subject.format(**values),
                     body.format(**values), url)


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's transaction commits, never after a rollback."""
    pending = [callback]  # emptied by the commit that runs it or the rollback that drops it

    def run(_session: Session) -> None:
        while pending:
            try:
                pending.pop()()
            except Exception:  # the commit stands; a lost email is asked for again
                log.exception("a task after commit could not be enqueued")

    def rolled_back(_session: Session, previous) -> None:
        if not previous.nested:  # a savepoint rolled back leaves the transaction going
            pending.clear()

    event.listen(session, "after_commit", run)
    event.listen(session, "after_soft_rollback", rolled_back)
