"""Signing staff in for the admin pages: administrators need their second factor."""

from __future__ import annotations

import re

import pyotp

from portal.models import Role
from portal.models.base import utcnow
from tests.factories import make_user
from tests.portal.auth.helpers import post, sign_in
from tests.totp_codes import previous_step_code


def make_admin(session, email: str = "admin@example.com"):
    """An administrator with TOTP on (as every administrator must have)."""
    user = make_user(session, email=email, role=Role.ADMIN)
    user.totp_secret = pyotp.random_base32()
    user.totp_enabled_at = utcnow()
    session.flush()
    return user


def sign_in_admin(client, user) -> None:
    """Password, then a current TOTP code (one step back, so a later code stays unused)."""
    response = sign_in(client, user.email)
    assert response.location.endswith("/sign-in/code"), response.location
    code = previous_step_code(user.totp_secret)
    response = post(client, "/sign-in/code", code=code)
    assert response.status_code == 302 and "/sign-in" not in response.location


def page_token(client, path: str) -> str:
    """The CSRF token a page carries in its htmx headers."""
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return re.search(rb'"X-CSRFToken": "([^"]+)"', page.data).group(1).decode()
