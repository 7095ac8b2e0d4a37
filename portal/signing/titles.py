"""How a request's document is named to a reader, in their language."""

from __future__ import annotations

from flask_babel import gettext as _

from portal.models import SignatureRequest


def document_title(signature_request: SignatureRequest) -> str:
    """"Invoice INV-1" (or "Credit note ...") in the current language, or an upload's title."""
    invoice = signature_request.invoice
    if invoice is None or signature_request.title != invoice.number:
        return signature_request.title
    if invoice.kind.value == "credit_note":
        return _("Credit note %(number)s", number=invoice.number)
    return _("Invoice %(number)s", number=invoice.number)
