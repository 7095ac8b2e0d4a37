"""Words the ops console shows for wave and delivery states and channels (translated)."""

from __future__ import annotations

from datetime import datetime

from babel.dates import format_datetime
from flask_babel import lazy_gettext as _l

from portal.i18n import current_format_locale
from portal.labels import label_for
from portal.ops import bp

WAVE_STATES = {"draft": _l("Not started"), "running": _l("Running"), "paused": _l("Paused"),
               "cancelled": _l("Cancelled"), "done": _l("Done")}
DELIVERY_STATES = {
    "pending": _l("Waiting"), "released": _l("Released"), "sending": _l("Sending"),
    "sent": _l("Sent"), "delivered": _l("Delivered"), "viewed": _l("Viewed"),
    "failed": _l("Failed"), "in_doubt": _l("In doubt"), "cancelled": _l("Cancelled"),
    "skipped": _l("Skipped"),
}
CHANNELS = {"email": _l("Email"), "web_push": _l("Web push"), "fcm": _l("App push"),
            "portal": _l("Portal inbox"), "peppol": _l("Peppol e-invoice")}


@bp.app_template_filter("wave_state")
def wave_state(code: object) -> str:
    """``paused`` → "Paused"."""
    return label_for(WAVE_STATES, code)


@bp.app_template_filter("delivery_state")
def delivery_state(code: object) -> str:
    """``in_doubt`` → "In doubt"."""
    return label_for(DELIVERY_STATES, code)


@bp.app_template_filter("channel_name")
def channel_name(code: object) -> str:
    """``fcm`` → "App push"."""
    return label_for(CHANNELS, code)


@bp.app_template_filter("datetime")
def date_time(value: datetime | None) -> str:
    """A moment in the reader's locale, short: ``23 Nov 2026, 14:05``."""
    if value is None:
        return ""
    return format_datetime(value, format="medium", locale=current_format_locale(),
                           tzinfo=value.tzinfo)
