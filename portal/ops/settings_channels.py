"""The channels on the settings page: what each is configured with, and a real test send.

Channel settings come from environment variables (portal.config), read once when
Herald starts; the page shows them read-only, each with the variable it comes
from, and secrets only as "set" or "not set" (never their value, not even masked
characters of it). A test goes out at once through the same adapter the workers
use, to the address the admin gives, and is logged with the target but no secret.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

import einvoice
from distribution.channels.base import (
    Attachment,
    Channel,
    ChannelError,
    ChannelName,
    OutgoingMessage,
    Receipt,
)
from distribution.events import record_event
from distribution.recipients import Recipient
from portal.channels import vapid_keys, vapid_subject
from portal.config import Settings
from portal.models import Organisation, User
from portal.ops.settings_store import SETTINGS_SUBJECT
from portal.preferences.push import SubscriptionError, check_subscription
from portal.recipients_sync import recipient_key

TESTABLE = (ChannelName.EMAIL, ChannelName.WEB_PUSH, ChannelName.FCM, ChannelName.PEPPOL)
TARGET_LABELS = {
    ChannelName.EMAIL: _l("Email address to send the test to"),
    ChannelName.WEB_PUSH: _l("Push subscription (JSON); empty: your own subscriptions"),
    ChannelName.FCM: _l("FCM registration token of a device"),
    ChannelName.PEPPOL: _l("Peppol ID to send the test to; empty: the seller's own"),
}


@dataclass(frozen=True, slots=True)
class SettingRow:
    """One setting as the page shows it."""

    label: object
    variable: str
    value: str | None  # None for a secret: only ``is_set`` is shown
    is_set: bool
    secret: bool = False


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """One channel: whether it is on and what it is configured with."""

    name: ChannelName
    enabled: bool
    rows: tuple[SettingRow, ...]


def _row(label, variable: str, value: object, *, secret: bool = False) -> SettingRow:
    is_set = value not in (None, "", False)
    shown = None if secret else ("" if value is None else str(value))
    return SettingRow(label, variable, shown, is_set, secret)


def channel_overview(settings: Settings) -> list[ChannelInfo]:
    """Every sending channel with its settings; secrets reduced to whether they are set."""
    smtp = settings.smtp
    subject = vapid_subject(settings)
    return [
        ChannelInfo(ChannelName.EMAIL, smtp is not None, (
            _row(_l("Sender address"), "MAIL_FROM", smtp and smtp.from_address),
            _row(_l("Sender name"), "MAIL_FROM_NAME", smtp and smtp.from_name),
            _row(_l("SMTP server"), "SMTP_HOST", smtp and smtp.host),
            _row(_l("SMTP port"), "SMTP_PORT", smtp and smtp.port),
            _row(_l("STARTTLS"), "SMTP_STARTTLS", smtp and smtp.starttls),
            _row(_l("Implicit TLS"), "SMTP_SSL", smtp and smtp.ssl),
            _row(_l("SMTP user"), "SMTP_USERNAME", smtp and smtp.username),
            _row(_l("SMTP password"), "SMTP_PASSWORD", smtp and smtp.password, secret=True),
            _row(_l("DKIM selector"), "DKIM_SELECTOR", smtp and smtp.dkim_selector),
            _row(_l("DKIM private key"), "DKIM_PRIVATE_KEY_FILE",
                 smtp and smtp.dkim_private_key, secret=True),
        )),
        ChannelInfo(ChannelName.WEB_PUSH, subject is not None, (
            _row(_l("VAPID contact"), "VAPID_SUBJECT", subject),
            _row(_l("VAPID private key"), "VAPID_PRIVATE_KEY_FILE",
                 settings.vapid_private_key_file or (subject and "instance"), secret=True),
            _row(_l("Plain-http push services allowed"), "WEB_PUSH_ALLOW_HTTP",
                 settings.web_push_allow_http),
        )),
        ChannelInfo(ChannelName.FCM, settings.fcm_service_account_file is not None, (
            _row(_l("Service account key"), "FCM_SERVICE_ACCOUNT_FILE",
                 settings.fcm_service_account_file, secret=True),
            _row(_l("FCM address"), "FCM_API_URL", settings.fcm_api_url),
        )),
        ChannelInfo(ChannelName.PEPPOL, bool(settings.peppol_api_url or settings.peppol_outbox), (
            _row(_l("Access point API"), "PEPPOL_API_URL", settings.peppol_api_url),
            _row(_l("Access point token"), "PEPPOL_API_TOKEN", settings.peppol_api_token,
                 secret=True),
            _row(_l("Outbox folder"), "PEPPOL_OUTBOX", settings.peppol_outbox),
        )),
    ]


class TestRefused(ValueError):
    """The test cannot be sent as asked; the message says why (for people)."""


def send_test(session: Session, settings: Settings, channel_name: ChannelName, target: str,
              *, user: User, org: Organisation | None, actor: str) -> list[str]:
    """Send a test on ``channel_name`` now; the list says where it went.

    Raises :class:`TestRefused` for a target that cannot be used and
    :class:`ChannelError` when the peer refused; both are logged.
    """
    target = (target or "").strip()
    try:
        sent = _send(session, settings, channel_name, target, user=user, org=org)
    except (TestRefused, ChannelError) as exc:
        reason = exc.reason if isinstance(exc, ChannelError) else str(exc)
        record_event(session, SETTINGS_SUBJECT, f"channel:{channel_name.value}",
                     "settings.channel_test_failed",
                     {"target": _loggable(channel_name, target), "reason": reason},
                     actor=actor)
        raise
    record_event(session, SETTINGS_SUBJECT, f"channel:{channel_name.value}",
                 "settings.channel_test_sent",
                 {"targets": [_loggable(channel_name, t) for t, _r in sent],
                  "receipts": [r.provider_message_id for _t, r in sent]}, actor=actor)
    return [_loggable(channel_name, t) for t, _r in sent]


def _loggable(channel_name: ChannelName, target: str) -> str:
    """What the log keeps of a target: push subscriptions carry keys, so only the endpoint's
    host; FCM tokens are bearer-like, so only their end."""
    if channel_name is ChannelName.WEB_PUSH and target.startswith("{"):
        try:
            endpoint = str(json.loads(target).get("endpoint", ""))
        except (ValueError, AttributeError):
            return "subscription"
        return endpoint.split("/")[2] if endpoint.count("/") >= 2 else "subscription"
    if channel_name is ChannelName.FCM:
        return f"…{target[-6:]}"
    return target[:200]


def _message(target: str, *, subject: str, text: str, language: str = "en",
             attachments: tuple[Attachment, ...] = ()) -> OutgoingMessage:
    return OutgoingMessage(delivery_id=0, idempotency_key=f"test-{uuid.uuid4().hex[:16]}",
                           message_type="test", address=target, recipient_name="",
                           language=language,
                           subject=subject, text=text, link=None, attachments=attachments)


def _send(session: Session, settings: Settings, channel_name: ChannelName, target: str, *,
          user: User, org: Organisation | None) -> list[tuple[str, Receipt]]:
    subject = _("Herald test message")
    text = _("This is a test from Herald's settings page. Nothing needs to be done.")
    if channel_name is ChannelName.EMAIL:
        if settings.smtp is None:
            raise TestRefused(_("Email is not set up: set MAIL_FROM and the SMTP variables."))
        if "@" not in target or len(target) > 254 or any(c.isspace() for c in target):
            raise TestRefused(_("Enter the email address to send the test to."))
        from distribution.channels.email import EmailChannel

        return [(target, _with(EmailChannel(settings.smtp), _message(
            target, subject=subject, text=text)))]
    if channel_name is ChannelName.WEB_PUSH:
        sub = vapid_subject(settings)
        if sub is None:
            raise TestRefused(_("Web push is not set up: set VAPID_SUBJECT."))
        targets = [_push_target(settings, target)] if target else _own_subscriptions(session,
                                                                                     user)
        if not targets:
            raise TestRefused(_("You have no push subscription; paste one (JSON) to test."))
        from distribution.channels.webpush import WebPushChannel

        channel = WebPushChannel(vapid_keys(settings), sub, timeout=10,
                                 allow_http=settings.web_push_allow_http)
        try:
            return [(t, channel.send(_message(t, subject=subject, text=text))) for t in targets]
        finally:
            channel.close()
    if channel_name is ChannelName.FCM:
        if settings.fcm_service_account_file is None:
            raise TestRefused(_("App push is not set up: set FCM_SERVICE_ACCOUNT_FILE."))
        if not target or len(target) > 4096 or any(c.isspace() for c in target):
            raise TestRefused(_("Enter the FCM registration token of the device."))
        from distribution.channels.fcm import FcmChannel

        channel = FcmChannel(str(settings.fcm_service_account_file), fcm_url=settings.fcm_api_url,
                             app_name=f"herald-settings-test-{uuid.uuid4().hex[:8]}")
        return [(target, _with(channel, _message(target, subject=subject, text=text)))]
    if channel_name is ChannelName.PEPPOL:
        return [_send_peppol(settings, target, org, subject)]
    raise TestRefused(_("This channel has no test."))


def _with(channel: Channel, message: OutgoingMessage) -> Receipt:
    try:
        return channel.send(message)
    finally:
        close = getattr(channel, "close", None)
        if close is not None:
            close()


def _push_target(settings: Settings, target: str) -> str:
    try:
        data = json.loads(target)
        checked = check_subscription(data, allow_http=settings.web_push_allow_http)
    except ValueError as exc:  # SubscriptionError is a ValueError, as is bad JSON
        reason = str(exc) if isinstance(exc, SubscriptionError) else _("It is not JSON.")
        raise TestRefused(_("That push subscription cannot be used: %(reason)s",
                            reason=reason)) from exc
    return json.dumps(checked, separators=(",", ":"), sort_keys=True)


def _own_subscriptions(session: Session, user: User) -> list[str]:
    """The signed-in user's working web push subscriptions (staff with a customer record)."""
    if user.customer_id is None:
        return []
    recipient = session.scalars(sa.select(Recipient).where(
        Recipient.recipient_key == recipient_key(user.customer_id))).first()
    if recipient is None:
        return []
    return [a.value for a in recipient.working_addresses(ChannelName.WEB_PUSH)]


def _send_peppol(settings: Settings, target: str, org: Organisation | None,
                 subject: str) -> tuple[str, Receipt]:
    from distribution.channels.peppol import PeppolFolderChannel, PeppolHttpChannel
    from portal.preferences.peppol_ids import PeppolIdError, parse_peppol_id

    if org is None:
        raise TestRefused(_("Set up the seller first: the test document comes from it."))
    if not target and org.peppol_endpoint_id:
        target = f"{org.peppol_endpoint_scheme}:{org.peppol_endpoint_id}"
    try:
        receiver = parse_peppol_id(target)
    except PeppolIdError as exc:
        raise TestRefused(str(exc)) from exc
    if settings.peppol_api_url:
        channel: Channel = PeppolHttpChannel(settings.peppol_api_url, settings.peppol_api_token)
    elif settings.peppol_outbox is not None:
        # The folder adapter's test folder: the access point's test pickup, never its live one.
        channel = PeppolFolderChannel(settings.peppol_outbox / "test")
    else:
        raise TestRefused(_("Peppol is not set up: set PEPPOL_API_URL or PEPPOL_OUTBOX."))
    ubl = test_document(org, receiver.scheme, receiver.identifier)
    message = _message(str(receiver), subject=subject, text="",
                       attachments=(Attachment("test.xml", "application/xml", ubl),))
    return str(receiver), _with(channel, message)


def test_document(org: Organisation, scheme: str, identifier: str) -> bytes:
    """A zero-amount UBL invoice from the seller to ``scheme:identifier``, marked as a test."""
    address = einvoice.Address(lines=[org.address_line1], city=org.city,
                               postal_zone=org.postal_code, country_code=org.country_code)
    seller = einvoice.Party(name=org.legal_name, vat_id=org.vat_id, address=address,
                            endpoint_id=org.peppol_endpoint_id or identifier,
                            endpoint_scheme=org.peppol_endpoint_scheme or scheme)
    buyer = einvoice.Party(name=_("Peppol connection test"), endpoint_id=identifier,
                           endpoint_scheme=scheme, address=address)
    doc = einvoice.Document(
        number=f"TEST-{uuid.uuid4().hex[:10].upper()}", issue_date=date.today(),
        currency=org.default_currency, seller=seller, buyer=buyer, buyer_reference="TEST",
        notes=[_("Connection test from Herald: not an invoice, nothing to pay.")],
        lines=[einvoice.Line(id="1", quantity=Decimal("1"), unit_code="C62",
                             net_price=Decimal("0.00"), item_name="Connection test",
                             vat_category="S", vat_rate=Decimal("21"))])
    return einvoice.write_ubl(einvoice.compute(doc))
