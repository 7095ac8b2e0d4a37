"""Getting in: password and magic-link sign-in, the second factor, resets, invitations,
self-registration, and sign-out."""

from __future__ import annotations

import secrets
import time
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from distribution.events import record_event
from portal.auth import bp, limits, tokens
from portal.auth import totp as totp_service
from portal.auth.emails import account_email_task
from portal.auth.forms import (
    CodeForm,
    ConfirmForm,
    EmailOnlyForm,
    NewPasswordForm,
    RegisterForm,
    SignInForm,
)
from portal.auth.passwords import hash_password, needs_rehash, verify_password
from portal.auth.sessions import (
    current_session_id,
    end_other_sessions,
    end_session,
    session_for,
    start_session,
    user_subject,
)
from portal.config import Settings
from portal.db import db_session
from portal.extensions import login_manager
from portal.mailer import after_commit
from portal.models import (
    Account,
    AccountToken,
    Customer,
    Invoice,
    Role,
    SignInSession,
    TokenPurpose,
    User,
)

# The Flask session key holding a sign-in that waits for its second factor, and its lifetime.
PENDING_KEY = "auth_pending"
PENDING_SECONDS = 300


def settings() -> Settings:
    """The installation's settings."""
    return current_app.config["HERALD"]


def client_ip() -> str:
    """The client's address (a proxy in front must set it, e.g. with ProxyFix)."""
    return (request.remote_addr or "unknown")[:45]


@login_manager.user_loader
def load_user(login_id: str) -> User | None:
    """The user of a live sign-in session; an ended or expired session signs the browser out."""
    row = session_for(db_session(), login_id, settings())
    if row is None or not row.user.active:
        return None
    row.user.login_id = login_id
    return row.user


def home_for(user: User) -> str:
    """Where a user lands after signing in."""
    return url_for("invoices.index") if not user.is_staff else url_for("ops.overview")


def _limited_response(template: str, limited: limits.Limited, **context) -> tuple[str, int]:
    flash(_("Too many attempts. For your safety, try again in %(minutes)s minutes.",
            minutes=limited.minutes), "error")
    return render_template(template, **context), 429


def finish_sign_in(user: User, method: str, *, remember: bool = False,
                   next_url: str | None = None) -> Response:
    """Start a session for ``user`` and send them on."""
    session.pop(PENDING_KEY, None)
    start_session(db_session(), user, settings(), ip=client_ip(),
                  user_agent=request.headers.get("User-Agent"), method=method,
                  remember=remember)
    login_user(user, remember=remember)
    return redirect(_safe_next(next_url) or home_for(user))


def _second_factor_or_finish(user: User, method: str, *, remember: bool = False,
                             next_url: str | None = None) -> Response:
    if not user.totp_enabled:
        return finish_sign_in(user, method, remember=remember, next_url=next_url)
    # The session token binds the wait to the password in force: a reset voids it.
    session[PENDING_KEY] = {"user_id": user.id, "token": user.session_token, "method": method,
                            "remember": remember, "next": _safe_next(next_url),
                            "at": int(time.time())}
    return redirect(url_for("auth.sign_in_code"))


def _failed(user: User | None, step: str) -> None:
    """Record a failed attempt as an event (never what was typed)."""
    subject = user_subject(user) if user is not None else ("sign_in", "unknown-account")
    record_event(db_session(), *subject, "auth.sign_in_failed",
                 {"step": step, "ip": client_ip()},
                 actor=f"user:{user.id}" if user else "anonymous")


@bp.route("/", methods=["GET"])
def root() -> Response:
    """Send visitors to their start page or to sign-in."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return redirect(url_for("auth.sign_in"))


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response | str | tuple[str, int]:
    """Show the sign-in form and sign the user in when email and password match."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = SignInForm()
    if form.validate_on_submit():
        db = db_session()
        email = form.email.data.strip().lower()
        limited = limits.check(db, settings(), "password", client_ip(), email)
        if limited:
            return _limited_response("auth/sign_in.html", limited, form=form)
        user = db.scalars(sa.select(User).where(User.email == email)).first()
        if user is not None and user.active and verify_password(user.password_hash,
                                                                form.password.data):
            limits.record(db, "password", client_ip(), email, succeeded=True)
            if needs_rehash(user.password_hash):
                user.password_hash = hash_password(form.password.data)
            return _second_factor_or_finish(user, "password", remember=form.remember.data,
                                            next_url=request.args.get("next"))
        limits.record(db, "password", client_ip(), email, succeeded=False)
        _failed(user, "password")
        # One message for every failure, so the form does not reveal which emails exist.
        flash(_("That email address and password do not match. Check both and try again."),
              "error")
    return render_template("auth/sign_in.html", form=form)


def _pending_user() -> tuple[User, dict] | None:
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        session.pop(PENDING_KEY, None)
        return None
    user = db_session().get(User, pending.get("user_id") or 0)
    if user is None or not user.active or user.session_token != pending.get("token") \
            or not user.totp_enabled:
        session.pop(PENDING_KEY, None)
        return None
    return user, pending


@bp.route("/sign-in/code", methods=["GET", "POST"])
def sign_in_code() -> Response | str | tuple[str, int]:
    """The second step for users with TOTP: a code from the app or a recovery code."""
    found = _pending_user()
    if found is None:
        flash(_("Sign in with your email address first."), "info")
        return redirect(url_for("auth.sign_in"))
    user, pending = found
    form = CodeForm()
    if form.validate_on_submit():
        db = db_session()
        account = f"user:{user.id}"
        limited = limits.check(db, settings(), "totp", client_ip(), account)
        if limited:
            return _limited_response("auth/sign_in_code.html", limited, form=form)
        code = form.code.data
        if totp_service.verify_code(user, code):
            limits.record(db, "totp", client_ip(), account, succeeded=True)
            return finish_sign_in(user, pending["method"], remember=pending["remember"],
                                  next_url=pending["next"])
        if totp_service.use_recovery_code(db, user, code):
            limits.record(db, "totp", client_ip(), account, succeeded=True)
            record_event(db, *user_subject(user), "auth.recovery_code_used",
                         {"remaining": totp_service.remaining_recovery_codes(db, user)},
                         actor=f"user:{user.id}")
            flash(_("You used a recovery code; it will not work again."), "info")
            return finish_sign_in(user, pending["method"], remember=pending["remember"],
                                  next_url=pending["next"])
        limits.record(db, "totp", client_ip(), account, succeeded=False)
        _failed(user, "totp")
        flash(_("That code is not right. Use the newest code your app shows, or a recovery "
                "code."), "error")
    return render_template("auth/sign_in_code.html", form=form)


@bp.route("/sign-out", methods=["POST"])
@login_required
def sign_out() -> Response:
    """End the session (POST with CSRF, so a link elsewhere cannot sign anyone out)."""
    db = db_session()
    row_id = current_session_id(current_user)
    row = db.get(SignInSession, row_id) if row_id else None
    if row is not None:
        record_event(db, *user_subject(current_user), "auth.signed_out",
                     {"session_id": row.id}, actor=f"user:{current_user.id}")
        end_session(db, row, "signed_out", actor=f"user:{current_user.id}")
    logout_user()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.sign_in"))


def _request_link(purpose: TokenPurpose, action: str, template: str
                  ) -> Response | str | tuple[str, int]:
    """Ask for an emailed link; the answer is the same whether the address is known or not."""
    form = EmailOnlyForm()
    if form.validate_on_submit():
        db = db_session()
        email = form.email.data.strip().lower()
        limited = limits.check(db, settings(), action, client_ip(), email)
        if limited:
            return _limited_response(template, limited, form=form)
        limits.record(db, action, client_ip(), email, succeeded=True)
        user = db.scalars(sa.select(User).where(User.email == email)).first()
        if user is not None and user.active:
            row = tokens.request_token(db, user, purpose, actor="anonymous")
            task, token_id = account_email_task(), row.id
            after_commit(db, lambda: task(token_id))
        flash(_("If %(email)s has a sign-in, we have emailed it a link. It works for "
                "%(minutes)s minutes.", email=email, minutes=settings().sign_in_link_minutes),
              "info")
        return redirect(request.path)
    return render_template(template, form=form)


@bp.route("/sign-in/link", methods=["GET", "POST"])
def magic_link_request() -> Response | str | tuple[str, int]:
    """Ask for a sign-in link by email instead of typing a password."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return _request_link(TokenPurpose.MAGIC_LINK, "magic_link", "auth/magic_link_request.html")


def _link_gone() -> tuple[str, int]:
    return render_template("auth/link_gone.html"), 404


@bp.route("/sign-in/link/<token>", methods=["GET", "POST"])
def magic_link(token: str) -> Response | str | tuple[str, int]:
    """Opening the link shows a button; pressing it signs in (mail scanners only open links)."""
    db = db_session()
    row = tokens.find(db, token, TokenPurpose.MAGIC_LINK)
    if row is None or not row.user.active:
        return _link_gone()
    form = ConfirmForm()
    if form.validate_on_submit():
        tokens.redeem(db, row)
        if current_user.is_authenticated:
            logout_user()
        return _second_factor_or_finish(row.user, "magic_link")
    return render_template("auth/magic_link.html", form=form, email=row.user.email)


@bp.route("/password/forgot", methods=["GET", "POST"])
def reset_request() -> Response | str | tuple[str, int]:
    """Ask for a password reset link by email."""
    return _request_link(TokenPurpose.PASSWORD_RESET, "reset", "auth/reset_request.html")


def _set_password(user: User, password: str, reason: str, keep_session: int | None = None
                  ) -> None:
    """Store a new password and end the user's other sessions (a rotated token ends them)."""
    db = db_session()
    user.password_hash = hash_password(password)
    user.session_token = _new_session_token()
    end_other_sessions(db, user, keep_session, reason, actor=f"user:{user.id}")


def _new_session_token() -> str:
    return secrets.token_hex(16)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Response | str | tuple[str, int]:
    """Choose a new password from an emailed link; every session of the user ends."""
    db = db_session()
    row = tokens.find(db, token, TokenPurpose.PASSWORD_RESET)
    if row is None or not row.user.active:
        return _link_gone()
    form = NewPasswordForm()
    if form.validate_on_submit():
        user = row.user
        tokens.redeem(db, row)
        _set_password(user, form.password.data, "password_reset")
        record_event(db, *user_subject(user), "auth.password_reset", {"token_id": row.id},
                     actor=f"user:{user.id}")
        if current_user.is_authenticated:
            logout_user()
        flash(_("Your password is changed and every device is signed out. Sign in with your "
                "new password."), "info")
        return redirect(url_for("auth.sign_in"))
    return render_template("auth/set_password.html", form=form,
                           title=_("Choose a new password"), email=row.user.email)


def _first_password(token: str, purpose: TokenPurpose, method: str, title: str
                    ) -> Response | str | tuple[str, int]:
    """Choose a password from an emailed invitation or registration link, then sign in."""
    db = db_session()
    row = tokens.find(db, token, purpose)
    if row is None or not row.user.active:
        return _link_gone()
    form = NewPasswordForm()
    if form.validate_on_submit():
        user = row.user
        tokens.redeem(db, row)
        reason = {TokenPurpose.INVITATION: "invitation_accepted",
                  TokenPurpose.REGISTRATION: "registration_confirmed"}[purpose]
        _set_password(user, form.password.data, reason)
        record_event(db, *user_subject(user), f"auth.{reason}", {"token_id": row.id},
                     actor=f"user:{user.id}")
        if current_user.is_authenticated:
            logout_user()
        return finish_sign_in(user, method)
    return render_template("auth/set_password.html", form=form, title=title,
                           email=row.user.email)


@bp.route("/invitation/<token>", methods=["GET", "POST"])
def accept_invitation(token: str) -> Response | str | tuple[str, int]:
    """Accept an emailed invitation by choosing a password; then the person is signed in."""
    return _first_password(token, TokenPurpose.INVITATION, "invitation",
                           _("Welcome: choose your password"))


@bp.route("/register/<token>", methods=["GET", "POST"])
def confirm_registration(token: str) -> Response | str | tuple[str, int]:
    """Finish a self-registration from the emailed link (it proves the address is theirs)."""
    return _first_password(token, TokenPurpose.REGISTRATION, "registration",
                           _("Almost done: choose your password"))


def parse_amount(text: str) -> Decimal | None:
    """An amount as people type it: "120.15", "120,15", "€ 1 234,50"; None when it is not one."""
    cleaned = "".join(ch for ch in text if ch.isdigit() or ch in ",.-")
    if "," in cleaned and "." in cleaned:  # the last separator is the decimal one
        decimal_sep = "," if cleaned.rfind(",") > cleaned.rfind(".") else "."
        group_sep = "." if decimal_sep == "," else ","
        cleaned = cleaned.replace(group_sep, "").replace(decimal_sep, ".")
    else:
        cleaned = cleaned.replace(",", ".")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def owned_customer(db, account_number: str, invoice_number: str, total: Decimal
                   ) -> Customer | None:
    """The customer whose account (or customer) number, invoice number and total all match."""
    account_number, invoice_number = account_number.strip(), invoice_number.strip()
    by_account = sa.select(Account.customer_id).where(Account.number == account_number)
    by_customer = sa.select(Customer.id).where(Customer.number == account_number)
    invoices = db.scalars(sa.select(Invoice).where(
        Invoice.number == invoice_number,
        sa.or_(Invoice.customer_id.in_(by_account), Invoice.customer_id.in_(by_customer))))
    for invoice in invoices:
        if invoice.tax_inclusive_amount == total or invoice.payable_amount == total:
            return db.get(Customer, invoice.customer_id)
    return None


def _pending_registration(db, user: User) -> bool:
    """True for a self-registration whose emailed link was never used to set a password."""
    if user.role is not Role.CUSTOMER or user.password_hash is not None \
            or user.last_login_at is not None:
        return False
    return db.scalars(sa.select(AccountToken.id).where(
        AccountToken.user_id == user.id,
        AccountToken.purpose == TokenPurpose.REGISTRATION)).first() is not None


@bp.route("/register", methods=["GET", "POST"])
def register() -> Response | str | tuple[str, int]:
    """Prove the account is yours with one of its invoices; a link to the address finishes it.

    Nothing signs in until the emailed link is opened and a password chosen there, so a
    sign-in is never created for an address its owner did not confirm. A registration
    still waiting for its link may be made again (a new link ends the old one), also for
    another account: an address cannot be held by someone who merely typed it first.
    """
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = RegisterForm()
    if form.validate_on_submit():
        db = db_session()
        account = form.account_number.data.strip().lower()
        limited = limits.check(db, settings(), "register", client_ip(), account)
        if limited:
            return _limited_response("auth/register.html", limited, form=form)
        limits.record(db, "register", client_ip(), account, succeeded=False)
        total = parse_amount(form.invoice_total.data)
        customer = owned_customer(db, form.account_number.data, form.invoice_number.data,
                                  total) if total is not None else None
        email = form.email.data.strip().lower()
        user = db.scalars(sa.select(User).where(User.email == email)).first()
        if customer is None:
            record_event(db, "sign_in", "registration", "auth.registration_failed",
                         {"ip": client_ip()}, actor="anonymous")
            flash(_("These details do not match an invoice of ours. Check the account number, "
                    "the invoice number and its total amount exactly as printed on the "
                    "invoice."), "error")
        elif user is not None and not _pending_registration(db, user):
            flash(_("That email address already has a sign-in. Sign in, or ask for a new "
                    "password if you forgot it."), "error")
        else:
            payload = {"customer_id": customer.id, "ip": client_ip()}
            if user is None:
                user = User(email=email, role=Role.CUSTOMER, session_token=_new_session_token())
                db.add(user)
            else:  # a link already sent must not open the account registered now
                tokens.end_links(db, user.id, TokenPurpose.REGISTRATION)
                if user.customer_id != customer.id:
                    payload["replaced_customer_id"] = user.customer_id
            user.name, user.customer_id = form.name.data.strip(), customer.id
            db.flush()
            record_event(db, *user_subject(user), "auth.registered", payload,
                         actor="anonymous")
            row = tokens.request_token(db, user, TokenPurpose.REGISTRATION, actor="anonymous")
            task, token_id = account_email_task(), row.id
            after_commit(db, lambda: task(token_id))
            flash(_("Almost done: we have emailed a link to %(email)s. Open it within "
                    "%(days)s days to choose your password and see your invoices.",
                    email=email, days=settings().sign_in_invitation_days), "info")
            return redirect(url_for("auth.sign_in"))
    return render_template("auth/register.html", form=form)


def _safe_next(target: str | None) -> str | None:
    """Accept only a path on this site as the place to return to."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    # Browsers drop tabs and newlines from URLs, so "/\t/evil.example" would become
    # "//evil.example" (another site); control characters also break the Location header.
    if any(ord(char) < 32 or ord(char) == 127 for char in target):
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target
