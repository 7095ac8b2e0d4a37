"""Default message texts per message type and language, and how they are rendered.

Texts never ask for credentials and link only to the portal's own address, so a
message from Herald cannot be mistaken for phishing. Parameters come from the
portal (already formatted for the recipient's language); rendering runs in
Jinja's sandbox, with HTML escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined
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
    "reminder": {
        "en": ("Reminder: invoice {{ number }} is due {{ due_date }}",
               "Hello {{ customer_name }},\n\nInvoice {{ number }} of {{ amount }} "
               "{{ 'is due on' if not overdue else 'was due on' }} {{ due_date }}. If you have "
               "already paid, thank you and please ignore this message.\n\nReview and pay it: "
               "{{ link }}"),
        "nl": ("Herinnering: factuur {{ number }} vervalt {{ due_date }}",
               "Beste {{ customer_name }},\n\nFactuur {{ number }} van {{ amount }} "
               "{{ 'vervalt op' if not overdue else 'verviel op' }} {{ due_date }}. Hebt u al "
               "betaald, dan danken wij u en mag u dit bericht negeren.\n\nBekijk en betaal: "
               "{{ link }}"),
        "es": ("Recordatorio: la factura {{ number }} vence el {{ due_date }}",
               "Hola {{ customer_name }}:\n\nLa factura {{ number }} de {{ amount }} "
               "{{ 'vence el' if not overdue else 'venció el' }} {{ due_date }}. Si ya la ha "
               "pagado, gracias y no tenga en cuenta este mensaje.\n\nConsúltela y páguela: "
               "{{ link }}"),
    },
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
    "signature_request": {
        "en": ("Please sign: {{ number }}", "Hello {{ customer_name }},\n\n{{ seller_name }} "
               "asks you to sign {{ number }}.\n\nOpen it on our portal: {{ link }}"),
        "nl": ("Te ondertekenen: {{ number }}", "Beste {{ customer_name }},\n\n{{ seller_name }} "
               "vraagt u {{ number }} te ondertekenen.\n\nOpen het op ons portaal: {{ link }}"),
        "es": ("Firma pendiente: {{ number }}", "Hola {{ customer_name }}:\n\n{{ seller_name }} "
               "le pide que firme {{ number }}.\n\nÁbralo en nuestro portal: {{ link }}"),
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

FALLBACK_NOTICES = {
    "en": "We could not send this by {channel} as you asked: {reason}. You can change how "
          "we reach you on our portal.",
    "nl": "Wij konden dit niet via {channel} versturen zoals u vroeg: {reason}. Op ons portaal "
          "kiest u hoe wij u bereiken.",
    "es": "No pudimos enviarlo por {channel} como nos pidió: {reason}. Puede cambiar cómo le "
          "contactamos en nuestro portal.",
}

_environment = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@dataclass(frozen=True, slots=True)
class RenderedText:
    """A message rendered for one language."""

    subject: str
    text: str
    html: str


def render(message_type: str, language: str, parameters: dict[str, Any]) -> RenderedText:
    """Render the default texts of ``message_type`` in ``language`` (English if unknown)."""
    texts = TEXTS[message_type]
    subject_template, body_template = texts.get(language) or texts["en"]
    values = {"overdue": False, "text": "", **parameters}
    subject = _environment.from_string(subject_template).render(values).strip()
    body = _environment.from_string(body_template).render(values).strip()
    notice = parameters.get("fallback_notice")
    if notice:
        body = f"{notice}\n\n{body}"
    return RenderedText(subject=subject, text=body, html=_html(body, values.get("link")))


def fallback_notice(language: str, channel_label: str, reason: str) -> str:
    """The sentence telling a customer why their chosen channel was not used."""
    template = FALLBACK_NOTICES.get(language) or FALLBACK_NOTICES["en"]
    return template.format(channel=channel_label, reason=reason)


def _html(text: str, link: object) -> str:
    paragraphs = []
    for block in text.split("\n\n"):
        lines = [_link(str(escape(line)), link) for line in block.split("\n")]
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
    words = line.split(" ")
    return " ".join(f'<a href="{w}">{w}</a>' if w == target else w for w in words)
