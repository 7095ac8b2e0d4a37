"""Builds the delivery channels from the settings: only what is configured is on."""

from __future__ import annotations

from distribution.channels.base import Channel, ChannelName
from distribution.channels.email import EmailChannel
from distribution.channels.peppol import PeppolFolderChannel, PeppolHttpChannel
from distribution.channels.portal_inbox import PortalInboxChannel
from distribution.channels.webpush import WebPushChannel
from distribution.vapid import VapidKeys, load_or_create_vapid_keys
from portal.config import Settings


def build_channels(settings: Settings) -> dict[ChannelName, Channel]:
    """The channel adapters this installation can use."""
    channels: dict[ChannelName, Channel] = {ChannelName.PORTAL: PortalInboxChannel()}
    if settings.smtp is not None:
        channels[ChannelName.EMAIL] = EmailChannel(settings.smtp)
    subject = vapid_subject(settings)
    if subject:
        channels[ChannelName.WEB_PUSH] = WebPushChannel(
            vapid_keys(settings), subject, allow_http=settings.web_push_allow_http)
    if settings.fcm_service_account_file is not None:
        from distribution.channels.fcm import FcmChannel

        channels[ChannelName.FCM] = FcmChannel(str(settings.fcm_service_account_file),
                                               fcm_url=settings.fcm_api_url)
    if settings.peppol_api_url:
        channels[ChannelName.PEPPOL] = PeppolHttpChannel(settings.peppol_api_url,
                                                         settings.peppol_api_token)
    elif settings.peppol_outbox is not None:
        channels[ChannelName.PEPPOL] = PeppolFolderChannel(settings.peppol_outbox)
    return channels


def vapid_keys(settings: Settings) -> VapidKeys:
    """The instance's VAPID keys (configured, or generated once in the instance folder)."""
    return load_or_create_vapid_keys(
        settings.instance_path,
        settings.vapid_private_key_file.read_bytes() if settings.vapid_private_key_file
        else None)


def vapid_subject(settings: Settings) -> str | None:
    """The VAPID ``sub`` claim, or ``None`` when web push is not configured (no contact)."""
    return settings.vapid_subject or (
        f"mailto:{settings.smtp.from_address}" if settings.smtp else settings.public_url
        if settings.public_url.startswith("https://") else None)
