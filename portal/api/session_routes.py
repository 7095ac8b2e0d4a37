"""Customers' own access for the mobile apps: a session token, and registering the device.

POST /api/v1/session takes the customer's email and password (and TOTP code when
two-step sign-in is on) and returns a token shown once, stored hashed, expiring
after HERALD_API_CUSTOMER_TOKEN_DAYS. It is not an API key: it reaches only the
customer's own device registration.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import request

from distribution.channels.base import ChannelName
from distribution.events import record_event
from distribution.recipients import add_address
from portal.api import bp
from portal.api.auth import current_caller
from portal.api.common import answer, settings
from portal.api.errors import ApiError
from portal.api.keys import issue_customer_token
from portal.api.spec import body, operation
from portal.auth import limits
from portal.auth.passwords import verify_password
from portal.auth.totp import verify_code
from portal.db import db_session, get_database
from portal.models import CustomerApiToken, Role, User
from portal.models.base import utcnow
from portal.recipients_sync import sync_customer

LIMIT_ACTION = "api_session"


def _client_ip() -> str:
    return request.remote_addr or "unknown"


@operation(bp, "/session", "POST", tag="customer app", auth="none", scope=None,
           summary="Sign a customer in (mobile apps)",
           body={"type": "object", "additionalProperties": False,
                 "required": ["email", "password"],
                 "properties": {"email": {"type": "string", "minLength": 3, "maxLength": 254},
                                "password": {"type": "string", "minLength": 1,
                                             "maxLength": 1000},
                                "code": {"type": "string", "maxLength": 20,
                                         "description": "the authenticator app's code, when "
                                                        "two-step sign-in is on"}}},
           responses={201: ("A customer token (shown once) for 'Authorization: Bearer'.", {
               "type": "object", "required": ["token", "expires_at"],
               "properties": {"token": {"type": "string"},
                              "expires_at": {"type": "string", "format": "date-time"}}}),
                      401: ("Email, password or code wrong (one message for all).",
                            {"$ref": "#/components/schemas/Error"}),
                      429: ("Too many failed attempts; see Retry-After.",
                            {"$ref": "#/components/schemas/Error"})})
def create_session():
    """The customer's own email and password give a token for the app; staff sign-ins are
    refused. Failed attempts are limited per account and per address."""
    data = body()
    email = data["email"].strip().lower()
    config = settings()
    # Checked and counted in a transaction of its own, committed before this request's own
    # opens: a failure's count must survive the 401, and SQLite allows one writer at a time.
    with get_database().session_scope() as checking:
        limited = limits.check(checking, config, LIMIT_ACTION, _client_ip(), email)
        user = None if limited else checking.scalars(
            sa.select(User).where(User.email == email)).first()
        ok = (user is not None and user.active and user.role is Role.CUSTOMER
              and verify_password(user.password_hash, data["password"])
              and (not user.totp_enabled or verify_code(user, data.get("code") or "")))
        if not limited:
            limits.record(checking, LIMIT_ACTION, _client_ip(), email, succeeded=ok)
        missing_code = user is not None and user.totp_enabled and not data.get("code")
        user_id = user.id if ok else None
    if limited:
        seconds = max(1, int((limited.retry_at - utcnow()).total_seconds()) + 1)
        raise ApiError(429, "rate_limited", f"Too many failed sign-ins; retry after {seconds} "
                       "seconds.", "password", headers={"Retry-After": str(seconds)})
    if user_id is None:
        raise ApiError(401, "invalid_credentials",
                       "Add the authenticator app's code as code." if missing_code else
                       "The email, password or code is wrong; check them and try again.",
                       "code" if missing_code else "password")
    session = db_session()
    user = session.get(User, user_id)
    token, secret = issue_customer_token(session, user, days=config.api_customer_token_days)
    return answer({"token": secret, "expires_at": token.expires_at.isoformat()}, 201)


@operation(bp, "/session", "DELETE", tag="customer app", auth="customer",
           summary="Sign the app out (end this customer token)",
           responses={204: ("Ended.", None)})
def end_session():
    """The token used for this request stops working."""
    caller = current_caller()
    session = db_session()
    header = request.headers.get("Authorization", "").split(" ", 1)[-1].strip()
    parts = header.split("_", 2)
    prefix = parts[1] if len(parts) == 3 else ""
    token = session.scalars(sa.select(CustomerApiToken).where(
        CustomerApiToken.prefix == prefix, CustomerApiToken.user_id == caller.user_id)).first()
    if token is not None and token.revoked_at is None:
        token.revoked_at = utcnow()
        record_event(session, "user", str(caller.user_id), "api_session.ended",
                     {"token_id": token.id}, actor=caller.actor)
    return "", 204


@operation(bp, "/devices", "POST", tag="customer app", auth="customer",
           summary="Register this device for app notifications (FCM)",
           body={"type": "object", "additionalProperties": False, "required": ["fcm_token"],
                 "properties": {"fcm_token": {"type": "string", "minLength": 20,
                                              "maxLength": 4096,
                                              "pattern": r"^[A-Za-z0-9_:\-\.]+$",
                                              "description": "the FCM registration token"},
                                "label": {"type": "string", "minLength": 1, "maxLength": 100,
                                          "description": "the device's name, e.g. 'Pixel 8'"}}},
           responses={201: ("Registered (registering the same token again is harmless).", {
               "type": "object", "required": ["device_id", "channel"],
               "properties": {"device_id": {"type": "integer"},
                              "channel": {"const": "fcm"},
                              "label": {"type": ["string", "null"]}}})})
def register_device():
    """The app's FCM token becomes one of the customer's addresses: invoices and reminders
    can then reach them as app notifications (subject to their preferences)."""
    data = body()
    caller = current_caller()
    session = db_session()
    user = session.get(User, caller.user_id)
    recipient = sync_customer(session, user.customer, actor=caller.actor)
    session.flush()
    address = add_address(session, recipient, ChannelName.FCM, data["fcm_token"],
                          verified=True, label=data.get("label"), actor=caller.actor)
    session.flush()
    return answer({"device_id": address.id, "channel": "fcm", "label": address.label}, 201)
