"""``herald customers invite EMAIL --account NUMBER``: invite a customer contact by email."""

from __future__ import annotations

import secrets

import click
import sqlalchemy as sa
from flask import current_app

from distribution.events import record_event
from portal.auth import bp, tokens
from portal.auth.emails import account_email_task
from portal.auth.sessions import user_subject
from portal.db import get_database
from portal.mailer import after_commit
from portal.models import Account, Customer, Role, TokenPurpose, User


class InvitationError(click.ClickException):
    """The invitation cannot be made; the message says why and what to do."""


def find_customer(session, number: str) -> Customer | None:
    """The customer with this account number, or else this customer number."""
    number = number.strip()
    customer_id = session.scalar(sa.select(Account.customer_id).where(Account.number == number))
    if customer_id is None:
        customer_id = session.scalar(sa.select(Customer.id).where(Customer.number == number))
    return session.get(Customer, customer_id) if customer_id is not None else None


def invite(session, email: str, number: str, name: str | None, *, actor: str) -> User:
    """Create (or reuse, if never used) the contact's sign-in and queue the invitation email."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise InvitationError(f"{email!r} is not an email address; give one like "
                              "name@example.com")
    customer = find_customer(session, number)
    if customer is None:
        raise InvitationError(f"no customer has account or customer number {number!r}; "
                              "check the number")
    user = session.scalars(sa.select(User).where(User.email == email)).first()
    if user is None:
        user = User(email=email, name=(name or customer.name)[:200], role=Role.CUSTOMER,
                    customer_id=customer.id, password_hash=None,
                    session_token=secrets.token_hex(16))
        session.add(user)
        session.flush()
    elif user.customer_id != customer.id or user.password_hash is not None:
        raise InvitationError(f"{email} already has a sign-in; they can use 'Forgot your "
                              "password?' on the sign-in page")
    row = tokens.request_token(session, user, TokenPurpose.INVITATION, actor=actor)
    record_event(session, *user_subject(user), "auth.invitation_created",
                 {"customer_id": customer.id, "token_id": row.id}, actor=actor)
    task, token_id = account_email_task(), row.id
    after_commit(session, lambda: task(token_id))
    return user


@bp.cli.command("invite")
@click.argument("email")
@click.option("--account", "number", required=True,
              help="The customer's account number (or customer number).")
@click.option("--name", default=None, help="The contact's name (default: the customer's).")
def invite_command(email: str, number: str, name: str | None) -> None:
    """Invite EMAIL to sign in to the portal for the customer of account NUMBER."""
    with get_database(current_app).session_scope() as session:
        user = invite(session, email, number, name, actor="cli")
        user_id = user.id
    click.echo(f"Invitation queued for {email.strip().lower()} (user {user_id}); the link "
               "works for the configured days once the worker sends it.")
