""""Review & pay" links: bearer tokens that open one invoice, and the stable address on the PDF.

A link's token is 32 random bytes; only its SHA-256 is stored, so the link
table cannot be used to open invoices. A link opens exactly one invoice (to
view, download and pay it) and nothing else, and lives until some days after
the due date (``PAY_LINK_DAYS_AFTER_DUE``, 30 by default, at most 120).
Reissuing from the recovery page revokes every earlier link of the invoice.

The PDF is frozen when the invoice is issued, so it cannot carry a token that
expires: it carries the invoice's stable address, ``/pay/<public id>``, which
shows the invoice to its signed-in owner or to a visitor who came through a
valid link, and otherwise the recovery page.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.bulk import allocate_ids, insert_rows
from distribution.events import NewEvent, record_event, record_events
from distribution.sqltypes import utcnow
from portal.config import MAX_PAY_LINK_DAYS
from portal.issuing import invoice_key
from portal.models import Invoice, PayLink

TOKEN_BYTES = 32


class LinkState:
    """Why a token does or does not open its invoice."""

    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class LinkCheck:
    """The outcome of looking a token up: its link (when known) and its state."""

    link: PayLink | None
    state: str

    @property
    def valid(self) -> bool:
        """True when the token opens its invoice now."""
        return self.state == LinkState.VALID


def token_digest(token: str) -> str:
    """The SHA-256 (hex) under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def public_id(invoice: Invoice) -> str:
    """The invoice's id in its stable address: ``<id>-<check>``.

    The check is derived from the invoice's content fingerprint, which never
    changes once imported, so the address printed on a PDF keeps working for
    as long as the invoice exists, and ids cannot be walked through.
    """
    check = hashlib.sha256(f"herald-pay:{invoice.content_sha256}".encode()).hexdigest()[:16]
    return f"{invoice.id}-{check}"


def invoice_for_public_id(session: Session, value: str) -> Invoice | None:
    """The invoice a public id names, or None when it names none (a wrong check included)."""
    number, _, _check = value.partition("-")
    if not number.isdigit() or len(number) > 18:
        return None
    invoice = session.get(Invoice, int(number))
    if invoice is None or not secrets.compare_digest(public_id(invoice), value):
        return None
    return invoice


def stable_url(public_url: str, invoice: Invoice) -> str:
    """The address printed on the PDF: never expires, opens nothing by itself."""
    return f"{public_url.rstrip('/')}/pay/{public_id(invoice)}"


def link_url(public_url: str, token: str) -> str:
    """The address of a link (what emails carry)."""
    return f"{public_url.rstrip('/')}/pay/t/{token}"


def link_expiry(invoice: Invoice, days: int, today: date | None = None) -> datetime:
    """When a link issued ``today`` stops working: ``days`` after the due date.

    A link issued after that (a reminder, a recovery request) still gets
    ``days`` from the day it is issued, or it would be dead on arrival.
    """
    return _expiry(invoice.due_date, invoice.issue_date, days, today or utcnow().date())


@functools.lru_cache(maxsize=4096)
def _expiry(due: date | None, issued: date, days: int, today: date) -> datetime:
    # Cached: a run's invoices share a handful of due dates.
    days = min(max(days, 1), MAX_PAY_LINK_DAYS)
    anchor = max(d for d in (due, issued, today) if d is not None)
    return datetime.combine(anchor + timedelta(days=days + 1), time.min, tzinfo=UTC)


def issue_link(session: Session, invoice: Invoice, *, days: int, purpose: str, actor: str,
               revoke_previous: bool = False) -> tuple[PayLink, str]:
    """A new link to ``invoice``: the row and the token (shown once, never stored).

    ``revoke_previous`` revokes every earlier link first (what a reissue does).
    Flushes, never commits.
    """
    if revoke_previous:
        revoke_links(session, invoice, reason=f"reissued ({purpose})", actor=actor)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    link = PayLink(invoice_id=invoice.id, token_sha256=token_digest(token), purpose=purpose,
                   expires_at=link_expiry(invoice, days), created_by=actor)
    session.add(link)
    session.flush()
    record_event(session, "invoice", invoice_key(invoice), "pay_link.issued",
                 {"link_id": link.id, "purpose": purpose,
                  "expires_at": link.expires_at.isoformat()}, actor=actor)
    return link, token


def issue_links(session: Session, invoices: Sequence[Invoice], *, days: int, purpose: str,
                actor: str) -> dict[int, str]:
    """One new link per invoice, in bulk (a run of thousands); returns tokens by invoice id.

    Rows and their ``pay_link.issued`` events go in with one bulk insert each.
    """
    if not invoices:
        return {}
    now = utcnow()
    today = now.date()
    tokens = {invoice.id: secrets.token_urlsafe(TOKEN_BYTES) for invoice in invoices}
    ids = allocate_ids(session, PayLink.__table__, len(invoices))
    rows = [(link_id, invoice.id, token_digest(tokens[invoice.id]), purpose,
             _expiry(invoice.due_date, invoice.issue_date, days, today), actor, now)
            for link_id, invoice in zip(ids, invoices, strict=True)]
    insert_rows(session, PayLink.__table__, ("id", "invoice_id", "token_sha256", "purpose",
                                             "expires_at", "created_by", "created_at"), rows)
    stamps = {expiry: expiry.isoformat() for expiry in {row[4] for row in rows}}
    record_events(session, [NewEvent("invoice", invoice_key(invoice), "pay_link.issued",
                                     {"link_id": row[0], "purpose": purpose,
                                      "expires_at": stamps[row[4]]}, actor)
                            for invoice, row in zip(invoices, rows, strict=True)])
    return tokens


def check_token(session: Session, token: str, now: datetime | None = None) -> LinkCheck:
    """Look a token up: valid, expired, revoked, or unknown."""
    if not token or len(token) > 100:
        return LinkCheck(None, LinkState.UNKNOWN)
    link = session.scalars(sa.select(PayLink).where(
        PayLink.token_sha256 == token_digest(token))).first()
    return LinkCheck(link, link_state(link, now))


def link_state(link: PayLink | None, now: datetime | None = None) -> str:
    """The state of a link row now."""
    if link is None:
        return LinkState.UNKNOWN
    if link.revoked_at is not None:
        return LinkState.REVOKED
    if link.expires_at <= (now or utcnow()):
        return LinkState.EXPIRED
    return LinkState.VALID


def record_opened(session: Session, link: PayLink, *, actor: str) -> None:
    """Note that a link was followed (the invoice's log says when, not by whom)."""
    link.last_opened_at = utcnow()
    record_event(session, "invoice", invoice_key(link.invoice), "pay_link.opened",
                 {"link_id": link.id, "purpose": link.purpose}, actor=actor)


def revoke_links(session: Session, invoice: Invoice, *, reason: str, actor: str) -> list[int]:
    """Revoke the invoice's links that still work; returns their ids."""
    now = utcnow()
    links = session.scalars(sa.select(PayLink).where(
        PayLink.invoice_id == invoice.id, PayLink.revoked_at.is_(None),
        PayLink.expires_at > now).order_by(PayLink.id)).all()
    for link in links:
        link.revoked_at = now
        link.revoked_reason = reason[:200]
        record_event(session, "invoice", invoice_key(invoice), "pay_link.revoked",
                     {"link_id": link.id, "reason": reason}, actor=actor)
    return [link.id for link in links]
