"""The one interface every payment provider implements, and what starting a payment returns.

A provider either sends the customer somewhere to pay (:class:`Redirect`, e.g.
Stripe Checkout) or tells them how to pay (:class:`Instructions`, e.g. a bank
transfer with its structured reference and EPC QR code). Money that comes in is
recorded through :mod:`portal.payments` (by a webhook or an import), never here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from portal.models import Invoice


class PaymentUnavailable(Exception):
    """The provider cannot take this payment now; the message is safe to show the customer."""


@dataclass(frozen=True, slots=True)
class Redirect:
    """Send the customer to ``url`` (the provider's own payment page)."""

    url: str


@dataclass(frozen=True, slots=True)
class Instructions:
    """How to pay by bank transfer: the details a banking app or a person types in."""

    beneficiary: str
    iban: str
    bic: str | None
    amount: Decimal
    currency: str
    reference: str
    structured: bool  # True for an ISO 11649 RF reference
    qr_payload: str | None  # EPC QR ("GiroCode") payload, for EUR only


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """What the customer asked to pay, and where the provider sends them back to."""

    invoice: Invoice
    amount: Decimal
    return_url: str
    cancel_url: str
    customer_email: str | None = None


class PaymentProvider(Protocol):
    """A way to pay an invoice."""

    name: str

    def start_payment(self, request: PaymentRequest) -> Redirect | Instructions:
        """Begin paying ``request.amount`` of ``request.invoice``."""
        ...
