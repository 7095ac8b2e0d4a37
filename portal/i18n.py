"""Languages: Flask-Babel picks the reader's language for every page.

The order is the signed-in customer's own setting, then a language chosen on the
page (kept in the session, for visitors and staff), then the browser's
``Accept-Language``, then English. The footer's language switcher sets the
session's choice and, for a customer, saves it on their record, so the next
sign-in on any device opens in the same language.
Catalogues live in ``portal/translations`` and are compiled at install time
(``make catalogs``); ``make translations`` refreshes them from the code.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Flask, g, has_request_context, redirect, request, session, url_for
from flask_babel import Babel, get_locale, get_translations, refresh
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from distribution.events import record_event
from portal import labels
from portal.db import db_session
from portal.models import Customer

SUPPORTED_LANGUAGES = ("en", "nl", "es")
DEFAULT_LANGUAGE = "en"
# Each language named in itself, so a reader finds their own in a list they cannot read.
LANGUAGE_NAMES = {"en": "English", "nl": "Nederlands", "es": "Español"}
# Babel locales used for numbers, dates and currencies in each language.
FORMAT_LOCALES = {"en": "en_GB", "nl": "nl_BE", "es": "es_ES"}
SESSION_KEY = "language"

babel = Babel()
bp = Blueprint("i18n", __name__)


def supported(language: str | None) -> str | None:
    """``"nl-BE"``, ``"NL"`` or ``"nl_BE"`` → ``"nl"``; ``None`` for a language we lack."""
    code = (language or "").strip()[:2].lower()
    return code if code in SUPPORTED_LANGUAGES else None


def select_language() -> str:
    """The language of this request (see module docstring); English outside a request."""
    if not has_request_context():
        return DEFAULT_LANGUAGE
    customer = _signed_in_customer()
    if customer is not None and (language := supported(customer.language)):
        return language
    if language := supported(session.get(SESSION_KEY)):
        return language
    return request.accept_languages.best_match(SUPPORTED_LANGUAGES) or DEFAULT_LANGUAGE


def current_format_locale() -> str:
    """The Babel locale for amounts and dates in this request (``en_GB`` outside one).

    Follows Flask-Babel's locale, which runs :func:`select_language` once per request
    (a page formats dozens of amounts and dates) and honours ``force_locale``.
    """
    if not has_request_context():
        return FORMAT_LOCALES[DEFAULT_LANGUAGE]
    return FORMAT_LOCALES.get(get_locale().language, FORMAT_LOCALES[DEFAULT_LANGUAGE])


def _catalogue():
    """This request's translations, looked up once per locale in use."""
    locale = get_locale()
    kept = g.get("_herald_catalogue")
    if kept is None or kept[0] is not locale:
        kept = g._herald_catalogue = (locale, get_translations())
    return kept[1]


@bp.route("/language", methods=["POST"])
def switch_language() -> Response:
    """Remember the chosen language (form POST with CSRF) and go back to the page."""
    language = supported(request.form.get("language"))
    if language is not None:
        session[SESSION_KEY] = language
        customer = _signed_in_customer()
        if customer is not None and customer.language != language:
            _save_customer_language(db_session(), customer, language)
        refresh()
    return redirect(_same_site_path(request.form.get("next")) or url_for("auth.root"), 303)


def _save_customer_language(db: Session, customer: Customer, language: str) -> None:
    previous = customer.language
    customer.language = language
    # Same subject key as the import's "customer.created", so one customer's story is one list.
    record_event(db, "customer", f"{customer.organisation_id}:{customer.number}",
                 "customer.language_changed", {"from": previous, "to": language},
                 actor=f"portal:user:{current_user.id}")


def _signed_in_customer() -> Customer | None:
    user = current_user
    if not getattr(user, "is_authenticated", False):
        return None
    return getattr(user, "customer", None)


def _same_site_path(target: str | None) -> str | None:
    """Accept only a path on this site as the page to return to."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def init_app(app: Flask) -> None:
    """Bind Flask-Babel and the switcher; templates get ``_``/``ngettext`` and the language."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    babel.init_app(app, locale_selector=select_language)
    # Flask-Babel's template callables find the request's catalogue again for every string
    # (a page has dozens); these keep it for the request and locale (force_locale included).
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _catalogue().ugettext(s),
        ngettext=lambda s, p, n: _catalogue().ungettext(s, p, n),
        pgettext=lambda c, s: _catalogue().upgettext(c, s),
        npgettext=lambda c, s, p, n: _catalogue().unpgettext(c, s, p, n),
        newstyle=True)
    app.register_blueprint(bp)
    labels.init_app(app)

    @app.context_processor
    def language_context() -> dict[str, object]:
        return {"current_language": get_locale().language, "language_names": LANGUAGE_NAMES}
