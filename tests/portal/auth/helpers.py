"""Set-up shared by the sign-in security tests: people, forms, the queued mail, the SMTP peer."""

from __future__ import annotations

import re
from dataclasses import replace

import sqlalchemy as sa

from distribution.channels.email import SmtpSettings
from distribution.events import Event
from portal.auth.emails import account_email_task, send_account_email
from portal.db import get_database
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.models import Role
from portal.queue import get_huey
from tests.factories import invoice_json, make_customer, make_organisation, make_user

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')


def people(session):
    """Alice (customer C1, with invoice INV-A1 of 120.15) and Bob (C2); an operator."""
    org = make_organisation(session)
    alice = make_customer(session, org, "C1", name="Alice")
    bob = make_customer(session, org, "C2", name="Bob")
    import_documents(session, [
        document_from_mapping(invoice_json("INV-A1", "C1"), Locator("t", "1"), source="json"),
        document_from_mapping(invoice_json("INV-B1", "C2"), Locator("t", "2"), source="json"),
    ], file="t")
    alice_user = make_user(session, email="alice@example.com", customer=alice)
    bob_user = make_user(session, email="bob@example.com", customer=bob)
    make_user(session, email="ops@example.com", role=Role.BILLING_OPERATOR)
    return alice_user, bob_user


def csrf_token(client, url: str = "/sign-in") -> str:
    """The CSRF token of the form on ``url``."""
    page = client.get(url)
    match = CSRF_RE.search(page.data)
    assert match, f"no CSRF token on {url}: {page.status_code}"
    return match.group(1).decode()


def post(client, url: str, form_url: str | None = None, *, headers=None, environ_base=None,
         **data):
    """POST a form with the CSRF token of the page it is on."""
    return client.post(url, data={"csrf_token": csrf_token(client, form_url or url), **data},
                       headers=headers or {}, environ_base=environ_base or {})


def sign_in(client, email: str, password: str = PASSWORD, **extra):
    """Submit the sign-in form; returns the response."""
    return post(client, "/sign-in", email=email, password=password, **extra)


def events_of(session, kind: str, key: str | None = None) -> list[Event]:
    """Events of one kind (for one subject key), oldest first."""
    query = sa.select(Event).where(Event.kind == kind).order_by(Event.id)
    if key is not None:
        query = query.where(Event.subject_key == key)
    return list(session.scalars(query))


def with_settings(monkeypatch, app, **changes) -> None:
    """Change the app's settings for one test."""
    monkeypatch.setitem(app.config, "HERALD", replace(app.config["HERALD"], **changes))


def take_queued_mail(app) -> list[int]:
    """The token ids of account emails queued since the last call (removed from the queue)."""
    huey = get_huey(app)
    name = account_email_task(app).name
    ids = []
    for task in huey.pending():
        if task.name == name and not huey.is_revoked(task):
            ids.append(task.args[0])
            huey.revoke_by_id(task.id)
    return ids


def deliver(app, smtp_peer, token_id: int, public_url: str = "https://portal.test") -> bool:
    """Run the account-email task's work against the SMTP peer."""
    smtp = SmtpSettings(host=smtp_peer.host, port=smtp_peer.port,
                        from_address="billing@herald.test", message_id_domain="herald.test",
                        timeout=5)
    settings = replace(app.config["HERALD"], public_url=public_url)
    return send_account_email(app, get_database(app).sessionmaker, smtp, settings, token_id)


def link_in(message, path: str) -> str:
    """The token of the ``https://portal.test<path><token>`` link in a received message."""
    body = message.parsed().get_body(("plain",)).get_content()
    match = re.search(re.escape(f"https://portal.test{path}") + r"(\S+)", body)
    assert match, body
    return match.group(1)
