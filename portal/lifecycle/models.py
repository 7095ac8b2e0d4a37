"""The lifecycle's record; it lives with the portal's models so their metadata is whole."""

from portal.models.legal_holds import LegalHold

__all__ = ["LegalHold"]
