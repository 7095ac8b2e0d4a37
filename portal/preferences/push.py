"""Web push from the portal: the VAPID public key, subscriptions, and a test notification.

A subscription the browser hands over is checked with the web push channel's own
parser (the endpoint an https URL unless ``WEB_PUSH_ALLOW_HTTP``, ``p256dh`` a
P-256 point, ``auth`` 16 bytes) and stored as a distribution address, so the
engine sends to exactly what was checked. The test notification goes out at
once through the real channel; a subscription its push service says is gone is
marked dead there and then.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from distribution.channels.base import ChannelError, ChannelName, ErrorKind, OutgoingMessage
from distribution.channels.webpush import WebPushChannel, parse_subscription
from distribution.events import record_event
from distribution.recipients import Address, Recipient, add_address, mark_dead
from portal.channels import vapid_keys, vapid_subject
from portal.config import Settings

MAX_ENDPOINT_LENGTH = 2048
MAX_LABEL_LENGTH = 120
REMOVED_REASON = "removed by the customer"


class SubscriptionError(ValueError):
    """The browser's subscription cannot be used; the message says what is wrong."""


def check_subscription(data: Any, *, allow_http: bool) -> dict[str, Any]:
    """The subscription as the channel will use it, or :class:`SubscriptionError`."""
    if not isinstance(data, dict):
        raise SubscriptionError(_("Send the browser's subscription as a JSON object."))
    endpoint = data.get("endpoint")
    if isinstance(endpoint, str) and len(endpoint) > MAX_ENDPOINT_LENGTH:
        raise SubscriptionError(_("The subscription's endpoint is too long."))
    try:
        return parse_subscription(json.dumps(data), allow_http=allow_http)
    except ChannelError as exc:
        raise SubscriptionError(exc.reason) from exc


def subscribe(session: Session, recipient: Recipient, subscription: dict[str, Any],
              label: str | None, *, actor: str) -> Address:
    """Store a checked subscription as a web push address (reviving it if it was removed)."""
    value = json.dumps(subscription, separators=(",", ":"), sort_keys=True)
    address = add_address(session, recipient, ChannelName.WEB_PUSH, value, verified=True,
                          label=(label or "")[:MAX_LABEL_LENGTH] or None, actor=actor)
    session.flush()
    return address


def find_by_endpoint(recipient: Recipient, endpoint: str) -> Address | None:
    """The recipient's working web push address with this endpoint."""
    for address in recipient.working_addresses(ChannelName.WEB_PUSH):
        try:
            if json.loads(address.value).get("endpoint") == endpoint:
                return address
        except ValueError:
            continue
    return None


def remove(session: Session, address: Address, *, actor: str) -> None:
    """Stop sending to a device (web push subscription or app token)."""
    mark_dead(session, address, REMOVED_REASON, actor=actor)
    session.flush()


def send_test(session: Session, settings: Settings, address: Address, *, link: str,
              language: str, actor: str) -> str | None:
    """Send a test notification now; ``None`` on success, else why it failed (for people)."""
    subject = vapid_subject(settings)
    if subject is None:
        return _("Notifications are not set up on this site yet.")
    channel = WebPushChannel(vapid_keys(settings), subject, timeout=10,
                             allow_http=settings.web_push_allow_http)
    message = OutgoingMessage(
        delivery_id=0, idempotency_key=f"test-{uuid.uuid4().hex[:16]}", message_type="test",
        address=address.value, recipient_name=address.recipient.name, language=language,
        subject=_("Notifications are on"),
        text=_("This is how Herald will tell you about new invoices."), link=link)
    try:
        receipt = channel.send(message)
    except ChannelError as exc:
        record_event(session, "recipient", address.recipient.recipient_key, "web_push.test_failed",
                     {"address_id": address.id, "kind": exc.kind.value, "reason": exc.reason},
                     actor=actor)
        if exc.kind is ErrorKind.ADDRESS_DEAD:
            mark_dead(session, address, exc.reason, actor=actor)
            return _("This device's subscription has ended. Turn notifications on again.")
        return _("The push service did not take the notification. Try again in a minute.")
    finally:
        channel.close()
    record_event(session, "recipient", address.recipient.recipient_key, "web_push.test_sent",
                 {"address_id": address.id, "status": receipt.detail.get("status")},
                 actor=actor)
    return None
