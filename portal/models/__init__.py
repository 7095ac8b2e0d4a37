"""The portal's records. Importing this package registers every table on ``Base.metadata``."""

from portal.models.api import ApiKey, ApiNote, CustomerApiToken, IdempotencyRecord  # noqa: F401
from portal.models.base import Base
from portal.models.channel_settings import CustomerEmailAddress
from portal.models.customers import Account, AccountStatus, Contact, Customer, CustomerKind
from portal.models.delivery_defaults import DeliveryDefaults  # noqa: F401 - settings page
from portal.models.disputes import Dispute, DisputeLine, DisputeMessage, DisputeStatus
from portal.models.invoices import (
    AllowanceCharge,
    DocumentKind,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineAllowanceCharge,
)
from portal.models.legal_holds import LegalHold  # noqa: F401 - data lifecycle
from portal.models.organisations import Organisation
from portal.models.pay import PayLink, PayLinkRequest, ProcessedProviderEvent  # noqa: F401
from portal.models.payments import Payment, PaymentKind, PaymentMethod
from portal.models.refunds import RefundKind, RefundRequest, RefundStatus  # noqa: F401
from portal.models.sign_in import (  # noqa: F401 - sign-in security's records
    AccountToken,
    RecoveryCode,
    SignInAttempt,
    SignInSession,
    TokenPurpose,
)
from portal.models.signatures import (  # noqa: F401 - signing's records
    RequestStatus,
    Signature,
    SignatureRequest,
    Signer,
    SignerStatus,
    SigningMode,
)
from portal.models.staff_identity import StaffIdentity  # noqa: F401 - identity provider
from portal.models.users import Role, User

__all__ = [
    "Account",
    "AccountStatus",
    "AllowanceCharge",
    "Base",
    "Contact",
    "Customer",
    "CustomerEmailAddress",
    "CustomerKind",
    "Dispute",
    "DisputeLine",
    "DisputeMessage",
    "DisputeStatus",
    "DocumentKind",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "LineAllowanceCharge",
    "Organisation",
    "Payment",
    "PaymentKind",
    "PaymentMethod",
    "Role",
    "User",
]
