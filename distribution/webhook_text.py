"""One readable line per webhook event, for Slack-compatible incoming webhooks (finance alerts).

Slack (and Mattermost, Rocket.Chat, Teams' Slack-compatible connectors) post the
``text`` of ``{"text": ...}`` as a message; ``&``, ``<`` and ``>`` are escaped
as Slack asks, so a value can never turn into a link or a mention.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _escape(value: Any) -> str:
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _money(data: dict[str, Any]) -> str:
    amount = data.get("amount")
    return f"{amount} {data.get('currency') or ''}".strip() if amount is not None else ""


def _invoice(data: dict[str, Any], capital: bool = True) -> str:
    number = data.get("invoice_number")
    kind = "credit note" if data.get("document_kind") == "credit_note" else "invoice"
    kind = kind.capitalize() if capital else kind
    return f"{kind} {number}" if number else kind


def _refund_requested(d: dict[str, Any]) -> str:
    waiting = d.get("status") == "pending_approval"
    text = f"Refund of {_money(d)} requested on {_invoice(d, False)}"
    if d.get("reason"):
        text += f": {d['reason']}"
    return text + (" (waiting for a finance approver)" if waiting else "")


def _refund_decided(d: dict[str, Any]) -> str:
    text = f"Refund of {_money(d)} on {_invoice(d, False)} {d.get('decision', 'decided')}"
    return text + (f" by {d['decided_by']}" if d.get("decided_by") else "")


def _dispute(d: dict[str, Any]) -> str:
    text = f"Dispute opened on {_invoice(d, False)}"
    if d.get("reason"):
        text += f" ({d['reason']})"
    return text + (f" for {d['amount']}" if d.get("amount") else "")


_TEXTS: dict[str, Callable[[dict[str, Any]], str]] = {
    "invoice.issued": lambda d: f"{_invoice(d)} issued",
    "invoice.sent": lambda d: f"{_invoice(d)} sent by {d.get('channel', 'a channel')}",
    "invoice.delivered": lambda d: f"{_invoice(d)} delivered ({d.get('channel', '')})",
    "invoice.viewed": lambda d: f"{_invoice(d)} viewed by the customer",
    "payment.succeeded": lambda d: (f"Payment of {_money(d)} recorded on "
                                    f"{_invoice(d, False)} (now {d.get('status_after', '?')})"),
    "signature.completed": lambda d: "Signature request completed: every signer has signed",
    "dispute.opened": _dispute,
    "refund.requested": _refund_requested,
    "refund.decided": _refund_decided,
    "wave.paused": lambda d: f"Wave paused: {d.get('reason') or 'no reason given'}",
}


def slack_text(event: dict[str, Any]) -> str:
    """``event``'s one-line summary, with Slack's three characters escaped."""
    data = event.get("data") or {}
    summary = _TEXTS.get(event["type"], lambda _d: event["type"])(data)
    subject = event.get("subject") or {}
    if event["type"] in ("signature.completed", "wave.paused"):
        summary += f" (#{subject.get('key')})"
    return f"[Herald] {_escape(summary)}"
