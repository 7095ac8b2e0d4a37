"""The signer's forms (Flask-WTF, so each carries a CSRF token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from portal.signing.drawing import MAX_DATA_URL_LENGTH, DrawingError, png_from_data_url


class SignForm(FlaskForm):
    """Consent, and a typed name or a drawn signature (or both)."""

    consent = BooleanField(_l("I have read the document and agree to the text above."),
                           validators=[DataRequired(_l("Tick the box to agree to the text "
                                                       "above."))])
    typed_name = StringField(_l("Type your full name"), validators=[
        Optional(), Length(max=200, message=_l("Keep your name under 200 characters."))])
    drawn_signature = HiddenField(validators=[Optional(), Length(max=MAX_DATA_URL_LENGTH)])

    drawn_png: bytes | None = None

    def validate_drawn_signature(self, field: HiddenField) -> None:
        """A drawn signature must be a real, small PNG."""
        if field.data:
            try:
                self.drawn_png = png_from_data_url(field.data)
            except DrawingError as exc:
                raise ValidationError(str(exc)) from None

    def validate(self, extra_validators=None) -> bool:
        """The fields' own checks, and one of the two ways to sign."""
        valid = super().validate(extra_validators)
        if not (self.typed_name.data or "").strip() and not self.drawn_signature.data:
            self.typed_name.errors = [*self.typed_name.errors,
                                      _l("Type your full name (or draw your signature).")]
            return False
        return valid


class DeclineForm(FlaskForm):
    """Declining, with the reason the sender will read."""

    reason = TextAreaField(_l("Why do you decline?"), validators=[
        DataRequired(_l("Say why you decline, so the sender can follow up.")),
        Length(max=1000, message=_l("Keep the reason under 1000 characters."))])
