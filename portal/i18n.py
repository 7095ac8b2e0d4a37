"""Languages: Flask-Babel picks the reader's language for every page.

The order is the signed-in customer's own setting, then a language chosen on the
page (kept in the session), then the browser's ``Accept-Language``, then English.
Catalogues live in ``portal/translations`` and are compiled at install time.
"""

from __future__ import annotations

from flask import Flask, request, session
from flask_babel import Babel
from flask_login import current_user

SUPPORTED_LANGUAGES = ("en", "nl", "es")
LANGUAGE_NAMES = {"en": "English", "nl": "Nederlands", "es": "Español"}
# Babel locales used for numbers, dates and currencies in each language.
FORMAT_LOCALES = {"en": "en_GB", "nl": "nl_BE", "es": "es_ES"}

babel = Babel()


def select_language() -> str:
    """The language of this request (see module docstring)."""
    chosen = session.get("language")
    if chosen in SUPPORTED_LANGUAGES:
        return chosen
    user = current_user
    if getattr(user, "is_authenticated", False):
        customer = getattr(user, "customer", None)
        language = (getattr(customer, "language", None) or "")[:2]
        if language in SUPPORTED_LANGUAGES:
            return language
    return request.accept_languages.best_match(SUPPORTED_LANGUAGES) or "en"


def current_format_locale() -> str:
    """The Babel locale for formatting amounts and dates in this request."""
    return FORMAT_LOCALES[select_language()]


def init_app(app: Flask) -> None:
    """Bind Flask-Babel; templates get ``_``/``gettext``/``ngettext`` and ``current_language``."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    babel.init_app(app, locale_selector=select_language)

    @app.context_processor
    def language_context() -> dict[str, object]:
        return {"current_language": select_language(), "language_names": LANGUAGE_NAMES}
