"""Shared set-up for the "How we reach you" tests: two customers, signed in by form."""

from __future__ import annotations

import re

import sqlalchemy as sa

from distribution.events import Event
from portal.models import Role
from tests.factories import make_customer, make_organisation, make_user

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(rb'name="csrf_token" type="hidden" value="([^"]+)"')


def two_customers(session):
    """Alice (C1, contact c1@example.com) and Bob (C2), each with a sign-in; and a staff user."""
    org = make_organisation(session)
    alice = make_customer(session, org, "C1", name="Alice")
    bob = make_customer(session, org, "C2", name="Bob")
    make_user(session, email="alice@example.com", customer=alice)
    make_user(session, email="bob@example.com", customer=bob)
    make_user(session, email="ops@example.com", role=Role.BILLING_OPERATOR)
    return alice, bob


def csrf_token(client, url: str = "/sign-in") -> str:
    """The CSRF token of the form on ``url`` (the session's token)."""
    page = client.get(url)
    match = CSRF_RE.search(page.data)
    assert match, f"no CSRF token on {url}"
    return match.group(1).decode()


def sign_in(client, email: str) -> None:
    """Sign in through the form and check it worked."""
    response = client.post("/sign-in", data={"csrf_token": csrf_token(client), "email": email,
                                             "password": PASSWORD})
    assert response.status_code == 302, response.data[:500]


def events_of(session, kind: str, key: str | None = None) -> list[Event]:
    """Events of one kind (for one subject key), oldest first."""
    query = sa.select(Event).where(Event.kind == kind).order_by(Event.id)
    if key is not None:
        query = query.where(Event.subject_key == key)
    return list(session.scalars(query))
