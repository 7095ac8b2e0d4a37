"""Signing links: a token per signer, derived from the app's secret key and a random salt.

Only the token's SHA-256 is stored, to find the signer it opens; a reminder
derives the same token again, so every message to a signer carries one link.
Rotating ``SECRET_KEY`` invalidates the links, as it does sessions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PURPOSE = b"herald-signing-link"


def new_salt() -> str:
    """A fresh random salt for one signer's token."""
    return secrets.token_hex(16)


def link_token(secret_key: str, signer_id: int, salt: str) -> str:
    """The token in signer ``signer_id``'s link (URL-safe, 43 characters)."""
    digest = hmac.new(secret_key.encode(), PURPOSE + f":{signer_id}:{salt}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_sha256(token: str) -> str:
    """What is stored of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()
