"""Forms of the "How we reach you" page (Flask-WTF: each carries a CSRF token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, Form, FormField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length

from distribution.channels.base import ChannelName
from portal.preferences.service import (
    CHANNEL_ORDER,
    CUSTOM,
    GENERAL,
    MESSAGE_TYPE_CODES,
    OFF,
)

CHANNEL_NAMES = {
    ChannelName.PORTAL: _l("the portal only"),
    ChannelName.WEB_PUSH: _l("a notification in this browser (web push)"),
    ChannelName.FCM: _l("a notification in our app"),
    ChannelName.EMAIL: _l("email"),
    ChannelName.PEPPOL: _l("e-invoice via Peppol"),
}
# Short names for sentences ("We send it by email and web push.").
CHANNEL_SHORT_NAMES = {
    ChannelName.PORTAL: _l("the portal"),
    ChannelName.WEB_PUSH: _l("web push"),
    ChannelName.FCM: _l("app notification"),
    ChannelName.EMAIL: _l("email"),
    ChannelName.PEPPOL: _l("Peppol e-invoice"),
}
NONE = ""


def _channel_choices(first: bool) -> list[SelectChoice]:
    blank = [] if first else [SelectChoice(NONE, _l("— nothing more —"))]
    return blank + [SelectChoice(c.value, CHANNEL_NAMES[c]) for c in CHANNEL_ORDER]


class _Channels(Form):
    """Up to three channels in order, and what email carries."""

    first = SelectField(_l("Send by"), choices=_channel_choices(True))
    second = SelectField(_l("And also by"), choices=_channel_choices(False), default=NONE)
    third = SelectField(_l("And also by"), choices=_channel_choices(False), default=NONE)
    pdf = BooleanField(_l("Attach the PDF to emails"))
    ubl = BooleanField(_l("Attach the e-invoice file (UBL XML) to emails"))

    def channels(self) -> list[ChannelName]:
        """The chosen channels in order, without blanks or repeats."""
        chosen: list[ChannelName] = []
        for value in (self.first.data, self.second.data, self.third.data):
            if value and ChannelName(value) not in chosen:
                chosen.append(ChannelName(value))
        return chosen

    def attachments(self) -> list[str]:
        """``pdf`` and/or ``ubl``."""
        return [name for name, on in (("pdf", self.pdf.data), ("ubl", self.ubl.data)) if on]


class _TypeChannels(_Channels):
    """One message type: like the general choice, its own channels, or not sent."""

    mode = RadioField(_l("How to send these"), default=GENERAL, choices=[
        SelectChoice(GENERAL, _l("As my general choice")),
        SelectChoice(CUSTOM, _l("My own choice for these:")),
        SelectChoice(OFF, _l("Do not send these; I look in the portal")),
    ])


class ChannelsForm(FlaskForm):
    """The general choice and one sub-form per message type (fields ``invoice-first`` ...)."""

    general = FormField(_Channels)


for _code in MESSAGE_TYPE_CODES:
    setattr(ChannelsForm, _code, FormField(_TypeChannels))


class AddEmailForm(FlaskForm):
    """A new email address, verified by a link before use."""

    email = EmailField(_l("Email address"), validators=[
        DataRequired(_l("Enter the email address to add.")),
        Email(_l("Enter an email address like name@example.com.")), Length(max=254)])


class PeppolForm(FlaskForm):
    """The customer's Peppol participant ID (checked in the view, with a precise message)."""

    peppol_id = StringField(_l("Peppol ID (scheme:identifier)"), validators=[
        DataRequired(_l("Enter your Peppol ID, e.g. 0208:0123456749.")), Length(max=120)])


class EmbedPdfForm(FlaskForm):
    """Whether the e-invoice (UBL) sent to the customer carries its PDF inside."""

    embed_pdf = BooleanField(_l("Put the PDF of each invoice inside the e-invoice file"))


class ConfirmForm(FlaskForm):
    """A button that only carries the CSRF token (remove, send a test, confirm)."""
