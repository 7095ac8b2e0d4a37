"""The portal inbox: a notification the customer sees when they sign in.

Nothing leaves Herald: the delivery row itself is the inbox entry, so sending
only acknowledges it. It counts as delivered when the customer views it (the
portal records that through :func:`distribution.inbox.mark_viewed`).
"""

from __future__ import annotations

from distribution.channels.base import ChannelName, OutgoingMessage, Receipt


class PortalInboxChannel:
    """Always available; needs no address beyond the recipient."""

    name = ChannelName.PORTAL

    def send(self, message: OutgoingMessage) -> Receipt:
        """Place the message in the customer's inbox."""
        return Receipt(provider_message_id=f"inbox:{message.idempotency_key}")
