"""Payment providers behind one interface, picked by configuration.

Stripe Checkout is on when ``STRIPE_SECRET_KEY`` is set; bank transfer when the
seller has an IBAN. ``HERALD_PAYMENT_PROVIDERS`` (comma-separated) can switch
either off.
"""

from __future__ import annotations

from portal.config import Settings
from portal.models import Invoice
from portal.payment_providers.bank_transfer import BankTransfer
from portal.payment_providers.base import (
    Instructions,
    PaymentProvider,
    PaymentRequest,
    PaymentUnavailable,
    Redirect,
)
from portal.payment_providers.stripe_checkout import StripeCheckout

__all__ = [
    "BankTransfer",
    "Instructions",
    "PaymentProvider",
    "PaymentRequest",
    "PaymentUnavailable",
    "Redirect",
    "StripeCheckout",
    "enabled_providers",
    "stripe_provider",
]


def stripe_provider(settings: Settings) -> StripeCheckout | None:
    """Stripe Checkout when it is switched on and its key is set, else None."""
    if "stripe" not in settings.payment_providers or not settings.stripe_secret_key:
        return None
    return StripeCheckout(settings.stripe_secret_key, api_base=settings.stripe_api_base)


def enabled_providers(settings: Settings, invoice: Invoice) -> dict[str, PaymentProvider]:
    """The providers ``invoice`` can be paid with, by name, in the order they are offered."""
    providers: dict[str, PaymentProvider] = {}
    stripe = stripe_provider(settings)
    if stripe is not None:
        providers[stripe.name] = stripe
    if "bank_transfer" in settings.payment_providers and invoice.organisation.iban:
        providers[BankTransfer.name] = BankTransfer()
    return providers
