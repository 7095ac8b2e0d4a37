"""Default message texts per message type and language, and how they are rendered.

Texts never ask for credentials and link only to the portal's own address, so a
message from Herald cannot be mistaken for phishing. Parameters come from the
portal (already formatted for the recipient's language); rendering runs in
Jinja's sandbox, with HTML escaped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape

LANGUAGES = ("en", "nl", "es")

# (subject, body) per message type and language. The body is plain text; the email
# HTML is built from it. Placeholders: customer_name, seller_name, number, amount,
# due_date, link, fallback_notice (empty unless a chosen channel could not be used).
TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "invoice": {
        "en": ("Your invoice {{ number }} from {{ seller_name }}",
               "Hello {{ customer_name }},\n\nYour invoice {{ number }} of {{ amount }} is "
               "ready. Please pay it by {{ due_date }}.\n\nReview and pay it on our portal: "
               "{{ link }}"),
        "nl": ("Uw factuur {{ number }} van {{ seller_name }}",
               "Beste {{ customer_name }},\n\nUw factuur {{ number }} van {{ amount }} staat "
               "klaar. Gelieve te betalen voor {{ due_date }}.\n\nBekijk en betaal ze op ons "
               "portaal: {{ link }}"),
        "es": ("Su factura {{ number }} de {{ seller_name }}",
               "Hola {{ customer_name }}:\n\nSu factura {{ number }} de {{ amount }} está "
               "disponible. Por favor, páguela antes del {{ due_date }}.\n\nConsúltela y "
               "páguela en nuestro portal: {{ link }}"),
    },
    "credit_note": {
        "en": ("Credit note {{ number }} from {{ seller_name }}",
               "Hello {{ customer_name }},\n\nWe have issued credit note {{ number }} of "
               "{{ amount }} to you.\n\nSee it on our portal: {{ link }}"),
        "nl": ("Creditnota {{ number }} van {{ seller_name }}",
               "Beste {{ customer_name }},\n\nWij hebben creditnota {{ number }} van "
               "{{ amount }} voor u opgemaakt.\n\nBekijk ze op ons portaal: {{ link }}"),
        "es": ("Nota de crédito {{ number }} de {{ seller_name }}",
               "Hola {{ customer_name }}:\n\nHemos emitido la nota de crédito {{ number }} de "
               "{{ amount }} a su favor.\n\nConsúltela en nuestro portal: {{ link }}"),
    },
    # "reminder" is filled in from REMINDER_TEXTS below (its wording depends on the tone).
    "receipt": {
        "en": ("Payment received for {{ number }}",
               "Hello {{ customer_name }},\n\nWe received {{ amount }} for invoice "
               "{{ number }}. Thank you.\n\n{{ link }}"),
        "nl": ("Betaling ontvangen voor {{ number }}",
               "Beste {{ customer_name }},\n\nWij ontvingen {{ amount }} voor factuur "
               "{{ number }}. Dank u.\n\n{{ link }}"),
        "es": ("Pago recibido de {{ number }}",
               "Hola {{ customer_name }}:\n\nHemos recibido {{ amount }} de la factura "
               "{{ number }}. Gracias.\n\n{{ link }}"),
    },
    # ``mode`` is "sign" or "acknowledge" (only read and confirm, no signature).
    "signature_request": {
        "en": ('{% if mode == "acknowledge" %}Please acknowledge{% else %}Please sign{% endif %}'
               ": {{ number }}",
               "Hello {{ customer_name }},\n\n{{ seller_name }} asks you to "
               '{% if mode == "acknowledge" %}read and acknowledge{% else %}sign{% endif %} '
               "{{ number }}.\n\nOpen it on our portal: {{ link }}"),
        "nl": ('{% if mode == "acknowledge" %}Te bevestigen{% else %}Te ondertekenen{% endif %}'
               ": {{ number }}",
               "Beste {{ customer_name }},\n\n{{ seller_name }} vraagt u {{ number }} te "
               '{% if mode == "acknowledge" %}lezen en te bevestigen{% else %}ondertekenen'
               "{% endif %}.\n\nOpen het op ons portaal: {{ link }}"),
        "es": ('{% if mode == "acknowledge" %}Confirmación pendiente{% else %}Firma pendiente'
               "{% endif %}: {{ number }}",
               "Hola {{ customer_name }}:\n\n{{ seller_name }} le pide que "
               '{% if mode == "acknowledge" %}lea y confirme{% else %}firme{% endif %} '
               "{{ number }}.\n\nÁbralo en nuestro portal: {{ link }}"),
    },
    "notice": {
        "en": ("A message from {{ seller_name }}", "Hello {{ customer_name }},\n\n{{ text }}"
               "\n\n{{ link }}"),
        "nl": ("Een bericht van {{ seller_name }}", "Beste {{ customer_name }},\n\n{{ text }}"
               "\n\n{{ link }}"),
        "es": ("Un mensaje de {{ seller_name }}", "Hola {{ customer_name }}:\n\n{{ text }}"
               "\n\n{{ link }}"),
    },
}

# Reminder texts per language and tone: 1 a friendly note before the due date, 2 on the
# due date, 3 a firmer reminder once overdue, 4 the final notice (fees and what happens
# next). Extra placeholders: fee (this reminder's fee, formatted, or empty), total (amount
# plus fees, formatted, or empty), deadline (the final notice's pay-by date, or empty).
# ``amount`` is what is still unpaid. They never ask for credentials and link only {{ link }}.
REMINDER_TEXTS: dict[str, dict[int, tuple[str, str]]] = {
    "en": {
        1: ("Reminder: invoice {{ number }} is due {{ due_date }}",
            "Hello {{ customer_name }},\n\nA friendly reminder: invoice {{ number }} of "
            "{{ amount }} is due on {{ due_date }}. If you have already paid, thank you and "
            "please ignore this message.\n\nReview and pay it: {{ link }}"),
        2: ("Invoice {{ number }} is due today",
            "Hello {{ customer_name }},\n\nInvoice {{ number }} of {{ amount }} is due today, "
            "{{ due_date }}. If you have already paid, thank you and please ignore this "
            "message.\n\nReview and pay it: {{ link }}"),
        3: ("Overdue: invoice {{ number }} was due {{ due_date }}",
            "Hello {{ customer_name }},\n\nInvoice {{ number }} was due on {{ due_date }} and "
            "{{ amount }} is still unpaid. Please pay it now{% if fee %}; a reminder fee of "
            "{{ fee }} applies{% endif %}. If you have already paid, thank you and please "
            "ignore this message. If something is wrong with the invoice, tell us on our "
            "portal.\n\nReview and pay it: {{ link }}"),
        4: ("Final notice: invoice {{ number }} is overdue",
            "Hello {{ customer_name }},\n\nThis is our final notice about invoice "
            "{{ number }}, which was due on {{ due_date }}. {{ amount }} is still unpaid."
            "{% if fee %} A reminder fee of {{ fee }} now applies, which brings the total to "
            "{{ total }}.{% endif %}\n\nPlease pay{% if deadline %} by {{ deadline }}"
            "{% else %} now{% endif %}. If we have not received your payment by then, we may "
            "suspend the service and pass the claim on for collection, which adds further "
            "costs. If you have already paid, thank you and please ignore this message."
            "\n\nReview and pay it: {{ link }}"),
    },
    "nl": {
        1: ("Herinnering: factuur {{ number }} vervalt {{ due_date }}",
            "Beste {{ customer_name }},\n\nEen vriendelijke herinnering: factuur {{ number }} "
            "van {{ amount }} vervalt op {{ due_date }}. Hebt u al betaald, dan danken wij u "
            "en mag u dit bericht negeren.\n\nBekijk en betaal: {{ link }}"),
        2: ("Factuur {{ number }} vervalt vandaag",
            "Beste {{ customer_name }},\n\nFactuur {{ number }} van {{ amount }} vervalt "
            "vandaag, {{ due_date }}. Hebt u al betaald, dan danken wij u en mag u dit bericht "
            "negeren.\n\nBekijk en betaal: {{ link }}"),
        3: ("Achterstallig: factuur {{ number }} verviel op {{ due_date }}",
            "Beste {{ customer_name }},\n\nFactuur {{ number }} verviel op {{ due_date }} en "
            "er staat nog {{ amount }} open. Gelieve nu te betalen{% if fee %}; er geldt een "
            "herinneringskost van {{ fee }}{% endif %}. Hebt u al betaald, dan danken wij u en "
            "mag u dit bericht negeren. Klopt er iets niet met de factuur, laat het ons dan "
            "weten via ons portaal.\n\nBekijk en betaal: {{ link }}"),
        4: ("Laatste herinnering: factuur {{ number }} is vervallen",
            "Beste {{ customer_name }},\n\nDit is onze laatste herinnering voor factuur "
            "{{ number }}, die verviel op {{ due_date }}. Er staat nog {{ amount }} open."
            "{% if fee %} Er geldt nu een herinneringskost van {{ fee }}, waarmee het totaal "
            "{{ total }} wordt.{% endif %}\n\nGelieve te betalen{% if deadline %} uiterlijk "
            "op {{ deadline }}{% else %} zonder verder uitstel{% endif %}. Ontvangen wij uw "
            "betaling dan niet, dan kunnen wij de dienst opschorten en de vordering uit handen "
            "geven voor invordering, wat extra kosten meebrengt. Hebt u al betaald, dan danken "
            "wij u en mag u dit bericht negeren.\n\nBekijk en betaal: {{ link }}"),
    },
    "es": {
        1: ("Recordatorio: la factura {{ number }} vence el {{ due_date }}",
            "Hola {{ customer_name }}:\n\nLe recordamos amablemente que la factura "
            "{{ number }} de {{ amount }} vence el {{ due_date }}. Si ya la ha pagado, gracias "
            "y no tenga en cuenta este mensaje.\n\nConsúltela y páguela: {{ link }}"),
        2: ("La factura {{ number }} vence hoy",
            "Hola {{ customer_name }}:\n\nLa factura {{ number }} de {{ amount }} vence hoy, "
            "{{ due_date }}. Si ya la ha pagado, gracias y no tenga en cuenta este mensaje."
            "\n\nConsúltela y páguela: {{ link }}"),
        3: ("Factura vencida: la factura {{ number }} venció el {{ due_date }}",
            "Hola {{ customer_name }}:\n\nLa factura {{ number }} venció el {{ due_date }} y "
            "quedan {{ amount }} pendientes de pago. Le rogamos que la pague ahora{% if fee %}; "
            "se aplica un recargo por recordatorio de {{ fee }}{% endif %}. Si ya la ha "
            "pagado, gracias y no tenga en cuenta este mensaje. Si hay algún problema con la "
            "factura, indíquenoslo en nuestro portal.\n\nConsúltela y páguela: {{ link }}"),
        4: ("Último aviso: la factura {{ number }} está vencida",
            "Hola {{ customer_name }}:\n\nEste es nuestro último aviso sobre la factura "
            "{{ number }}, que venció el {{ due_date }}. Quedan {{ amount }} pendientes de "
            "pago.{% if fee %} Ahora se aplica un recargo por recordatorio de {{ fee }}, por "
            "lo que el total asciende a {{ total }}.{% endif %}\n\nLe rogamos que pague"
            "{% if deadline %} antes del {{ deadline }}{% else %} sin más demora{% endif %}. "
            "Si para entonces no hemos recibido su pago, podremos suspender el servicio y "
            "ceder la deuda para su cobro, lo que supone costes adicionales. Si ya la ha "
            "pagado, gracias y no tenga en cuenta este mensaje.\n\nConsúltela y páguela: "
            "{{ link }}"),
    },
}
REMINDER_TONES = (1, 2, 3, 4)
# Callers from before tones passed only ``overdue``: the pre-due note, or the firmer one.
TEXTS["reminder"] = {language: tones[1] for language, tones in REMINDER_TEXTS.items()}

FALLBACK_NOTICES = {
    "en": "We could not send this by {channel} as you asked: {reason}. You can change how "
          "we reach you on our portal.",
    "nl": "Wij konden dit niet via {channel} versturen zoals u vroeg: {reason}. Op ons portaal "
          "kiest u hoe wij u bereiken.",
    "es": "No pudimos enviarlo por {channel} como nos pidió: {reason}. Puede cambiar cómo le "
          "contactamos en nuestro portal.",
}

_environment = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
# Operators' HTML bodies (distribution.template_store): placeholders are escaped.
_html_environment = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)

# Operators' own texts in force: (kind, part, language) -> Jinja source, where kind is
# the message type ("reminder.<tone>" for reminders) and part one of email_subject,
# email_text, email_html, push_title, push_body. See distribution.template_store.
Overrides = Mapping[tuple[str, str, str], str]
PUSH_CHANNELS = frozenset({"web_push", "fcm"})


@dataclass(frozen=True, slots=True)
class RenderedText:
    """A message rendered for one language."""

    subject: str
    text: str
    html: str


def render(message_type: str, language: str, parameters: dict[str, Any], *,
           channel: str | None = None, overrides: Overrides | None = None) -> RenderedText:
    """Render ``message_type`` in ``language`` (English if unknown) for ``channel``.

    An operator's text in ``overrides`` replaces the built-in one of the same part:
    for a push channel (web push, FCM) the push title and body, for any other the
    email subject, text and HTML body.
    """
    texts = TEXTS[message_type]
    if language not in texts:
        language = "en"
    subject_template, body_template = texts[language]
    values = {"overdue": False, "text": "", "mode": "sign", **parameters}
    kind = message_type
    if message_type == "reminder":
        values = {"fee": "", "total": "", "deadline": "", **values}
        values["tone"] = reminder_tone(values)
        subject_template, body_template = REMINDER_TEXTS[language][values["tone"]]
        kind = f"reminder.{values['tone']}"
    html_template = None
    if overrides:
        push = channel in PUSH_CHANNELS
        subject_template = overrides.get(
            (kind, "push_title" if push else "email_subject", language), subject_template)
        body_template = overrides.get(
            (kind, "push_body" if push else "email_text", language), body_template)
        html_template = None if push else overrides.get((kind, "email_html", language))
    subject = _renderer(subject_template).render(values).strip()
    body = _renderer(body_template).render(values).strip()
    notice = parameters.get("fallback_notice")
    if notice:
        body = f"{notice}\n\n{body}"
    if html_template is not None:
        subject = " ".join(subject.split())  # an operator's text may hold a line break
        return RenderedText(subject=subject, text=body,
                            html=_with_notice(compiled_html(html_template).render(values),
                                              notice))
    return RenderedText(subject=subject, text=body, html=_html(body, values.get("link")))


def reminder_tone(parameters: dict[str, Any]) -> int:
    """The tone (1 to 4) of a reminder: its ``tone`` parameter, else 3 if ``overdue``, else 1.

    A tone above 4 gets the final notice's words, one below 1 the friendliest.
    """
    tone = parameters.get("tone")
    if tone in (None, ""):
        return 3 if parameters.get("overdue") else 1
    return min(max(int(tone), REMINDER_TONES[0]), REMINDER_TONES[-1])


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> Template:
    # Compiling a text costs milliseconds; rendering it microseconds. Jinja does not
    # cache from_string, and every delivery renders the same few texts.
    return _environment.from_string(source)


# ``{{ name }}`` and nothing else of Jinja's syntax; keywords are literals, not names.
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_JINJA_OPENERS = ("{{", "{%", "{#")
_LITERAL_NAMES = frozenset({"true", "false", "none", "True", "False", "None"})


class _PlainText:
    """A text whose only Jinja syntax is ``{{ name }}``, rendered by joining its parts.

    The same result as its Jinja template (``str`` of each value, no escaping), at a
    fraction of the cost: a send renders two or three such texts per delivery. A
    name not among the values is left to Jinja (a global, or StrictUndefined's error).
    """

    __slots__ = ("parts", "template")

    def __init__(self, parts: list[str], template: Template) -> None:
        self.parts = parts  # literal, name, literal, name, ..., literal
        self.template = template

    def render(self, values: Mapping[str, Any]) -> str:
        """The text with each placeholder replaced by ``str`` of its value."""
        parts = self.parts
        try:
            out = [parts[0]]
            for index in range(1, len(parts), 2):
                out.append(str(values[parts[index]]))
                out.append(parts[index + 1])
        except KeyError:
            return self.template.render(values)
        return "".join(out)


@functools.lru_cache(maxsize=256)
def _renderer(source: str) -> _PlainText | Template:
    """What renders a plain-text part: :class:`_PlainText` when the text allows it."""
    template = _compiled(source)
    parts = _PLACEHOLDER.split(source)
    # Jinja turns \r\n into \n and drops one trailing newline: such texts keep Jinja.
    plain = ("\r" not in source and not source.endswith("\n")
             and not any(opener in literal for literal in parts[::2]
                         for opener in _JINJA_OPENERS)
             and not any(name in _LITERAL_NAMES for name in parts[1::2]))
    return _PlainText(parts, template) if plain else template


def compiled(source: str) -> Template:
    """A plain-text template (subject, text body, push title or body), compiled once."""
    return _compiled(source)


@functools.lru_cache(maxsize=128)
def compiled_html(source: str) -> Template:
    """An HTML body template, placeholders escaped, compiled once."""
    return _html_environment.from_string(source)


def environment_for(part: str) -> SandboxedEnvironment:
    """The sandbox a part's text is parsed and rendered in (HTML escapes placeholders)."""
    return _html_environment if part == "email_html" else _environment


def _with_notice(html: str, notice: object) -> str:
    # The fallback notice goes first, as render puts it first in the text body.
    if not notice:
        return html
    paragraph = f"<p>{escape(str(notice))}</p>"
    body = re.search(r"(?i)<body[^>]*>", html)
    if body is None:
        return paragraph + html
    return html[:body.end()] + paragraph + html[body.end():]


def fallback_notice(language: str, channel_label: str, reason: str) -> str:
    """The sentence telling a customer why their chosen channel was not used."""
    template = FALLBACK_NOTICES.get(language) or FALLBACK_NOTICES["en"]
    return template.format(channel=channel_label, reason=reason)


def _html(text: str, link: object) -> str:
    paragraphs = []
    # Escaping leaves line breaks alone, so the whole text is escaped at once.
    for block in str(escape(text)).split("\n\n"):
        lines = [_link(line, link) for line in block.split("\n")]
        paragraphs.append("<p>" + "<br>".join(lines) + "</p>")
    return ("<!doctype html><html><body style=\"font-family:sans-serif;line-height:1.5\">"
            + "".join(paragraphs) + "</body></html>")


def _link(line: str, link: object) -> str:
    # Only the portal's own address (the message's link) becomes clickable: a URL that came
    # in through a parameter (a name, a notice text) stays plain text, so a message from
    # Herald never carries a link elsewhere.
    if not link or not str(link).startswith(("https://", "http://")):
        return line
    target = str(escape(str(link)))
    if target not in line:
        return line
    words = line.split(" ")
    return " ".join(f'<a href="{w}">{w}</a>' if w == target else w for w in words)
