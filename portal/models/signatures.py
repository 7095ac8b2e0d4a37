"""Requests to sign or acknowledge a document, their signers in order, and the signatures.

A request points at one immutable PDF in the document store (an issued
invoice's PDF, or an uploaded one such as a refund authorisation) by its
SHA-256; what a signer consented to is therefore fixed when the request is made.
Signers are asked one after the other; each holds a link token of which only
the SHA-256 is kept here.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from portal.models.base import Base, UTCDateTime, enum_column, utcnow
from portal.models.customers import Customer
from portal.models.invoices import Invoice
from portal.models.organisations import Organisation


class SigningMode(enum.StrEnum):
    SIGN = "sign"
    ACKNOWLEDGE = "acknowledge"


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    DECLINED = "declined"
    EXPIRED = "expired"


class SignerStatus(enum.StrEnum):
    WAITING = "waiting"  # an earlier signer has not signed yet
    ASKED = "asked"
    SIGNED = "signed"
    DECLINED = "declined"
    EXPIRED = "expired"
    SKIPPED = "skipped"  # an earlier signer declined


class SignatureRequest(Base):
    """One document to be signed or acknowledged by one or more people, in order."""

    __tablename__ = "signature_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    document_sha256: Mapped[str] = mapped_column(sa.String(64))
    mode: Mapped[SigningMode] = mapped_column(enum_column(SigningMode, 16))
    consent_text: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[RequestStatus] = mapped_column(enum_column(RequestStatus, 16), index=True)
    signed_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation] = relationship()
    customer: Mapped[Customer] = relationship()
    invoice: Mapped[Invoice | None] = relationship()
    signers: Mapped[list[Signer]] = relationship(
        back_populates="request", order_by="Signer.position", cascade="all, delete-orphan")

    @property
    def current_signer(self) -> Signer | None:
        """The signer whose turn it is, or None when nobody is asked now."""
        return next((s for s in self.signers if s.status is SignerStatus.ASKED), None)


class Signer(Base):
    """One person asked to sign, with their place in the order and their link token's hash."""

    __tablename__ = "signature_signers"
    __table_args__ = (sa.UniqueConstraint("request_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        sa.ForeignKey("signature_requests.id", ondelete="CASCADE"))
    position: Mapped[int]
    email: Mapped[str] = mapped_column(sa.String(254), index=True)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    status: Mapped[SignerStatus] = mapped_column(enum_column(SignerStatus, 16))
    # The link token is derived from the app's secret key and this salt, so a reminder
    # can carry the same link; only the token's SHA-256 is stored, to find it.
    token_salt: Mapped[str] = mapped_column(sa.String(64))
    token_sha256: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminders_sent: Mapped[int] = mapped_column(default=0)
    viewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decline_reason: Mapped[str | None] = mapped_column(sa.Text)

    request: Mapped[SignatureRequest] = relationship(back_populates="signers")
    signature: Mapped[Signature | None] = relationship(back_populates="signer")


class Signature(Base):
    """What one signer did when they signed: the evidence, as recorded in the event log."""

    __tablename__ = "signatures"

    id: Mapped[int] = mapped_column(primary_key=True)
    signer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("signature_signers.id", ondelete="CASCADE"), unique=True)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ip_address: Mapped[str] = mapped_column(sa.String(64))
    user_agent: Mapped[str] = mapped_column(sa.String(500))
    document_sha256: Mapped[str] = mapped_column(sa.String(64))
    consent_text: Mapped[str] = mapped_column(sa.Text)
    typed_name: Mapped[str | None] = mapped_column(sa.String(200))
    drawn_png: Mapped[bytes | None] = deferred(mapped_column(sa.LargeBinary))
    drawn_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    event_hash: Mapped[str] = mapped_column(sa.String(64))

    signer: Mapped[Signer] = relationship(back_populates="signature")
