"""Default texts: every type in every language, parameters filled in, HTML escaped."""

from __future__ import annotations

import re

import pytest
from jinja2 import UndefinedError

from distribution.templates import LANGUAGES, TEXTS, fallback_notice, render

PARAMETERS = {"customer_name": "Ann Peeters", "seller_name": "Testing Telecom",
              "number": "INV-2026-000123", "amount": "€ 120,15", "due_date": "31 December 2026",
              "link": "https://portal.herald.test/invoices/INV-2026-000123?lang=nl&x=1",
              "text": "Our offices are closed on Friday."}

GREETINGS = {"en": "Hello Ann Peeters,", "nl": "Beste Ann Peeters,", "es": "Hola Ann Peeters:"}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("message_type", sorted(TEXTS))
def test_every_type_renders_in_every_language(message_type, language):
    rendered = render(message_type, language, PARAMETERS)

    assert rendered.text.startswith(GREETINGS[language])
    assert PARAMETERS["link"] in rendered.text
    for text in (rendered.subject, rendered.text, rendered.html):
        assert "{{" not in text and "}}" not in text and "{%" not in text
    if message_type != "notice":
        assert "INV-2026-000123" in rendered.subject
        assert "INV-2026-000123" in rendered.text
    if message_type in ("invoice", "credit_note", "reminder", "receipt"):
        assert "€ 120,15" in rendered.text
    if message_type == "notice":
        assert "Our offices are closed on Friday." in rendered.text
    escaped_link = PARAMETERS["link"].replace("&", "&amp;")
    assert f'<a href="{escaped_link}">{escaped_link}</a>' in rendered.html


def test_exact_english_invoice():
    rendered = render("invoice", "en", PARAMETERS)
    assert rendered.subject == "Your invoice INV-2026-000123 from Testing Telecom"
    assert rendered.text == (
        "Hello Ann Peeters,\n\nYour invoice INV-2026-000123 of € 120,15 is ready. Please pay "
        "it by 31 December 2026.\n\nReview and pay it on our portal: " + PARAMETERS["link"])


def test_reminder_tone_follows_overdue():
    assert "was due on 31 December 2026" in render(
        "reminder", "en", {**PARAMETERS, "overdue": True}).text
    assert "vence el 31 December 2026" in render("reminder", "es", PARAMETERS).text
    assert "verviel op" in render("reminder", "nl", {**PARAMETERS, "overdue": True}).text


def test_unknown_language_falls_back_to_english():
    assert render("invoice", "fr", PARAMETERS).text.startswith("Hello Ann Peeters,")


def test_html_is_escaped_but_text_is_not():
    name = 'Ann <script>alert("x")</script> & Co'
    rendered = render("invoice", "en", {**PARAMETERS, "customer_name": name})

    assert f"Hello {name}," in rendered.text
    assert "<script>" not in rendered.html
    assert "Ann &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in rendered.html


def test_only_the_portal_link_is_made_clickable():
    # A customer name (or a notice text) holding a URL must not become a link in our mail.
    rendered = render("notice", "en", {**PARAMETERS,
                                       "text": "Pay at https://evil.example/pay now"})

    assert "https://evil.example/pay" in rendered.html
    assert 'href="https://evil.example' not in rendered.html
    assert len(re.findall(r"<a href=", rendered.html)) == 1


def test_a_missing_parameter_raises():
    parameters = dict(PARAMETERS)
    del parameters["amount"]
    with pytest.raises(UndefinedError, match="amount"):
        render("invoice", "en", parameters)


def test_parameters_are_not_templates_themselves():
    rendered = render("invoice", "en", {**PARAMETERS, "customer_name": "{{ seller_name }}"})
    assert rendered.text.startswith("Hello {{ seller_name }},")


@pytest.mark.parametrize(("language", "start"), [
    ("en", "We could not send this by Peppol e-invoicing as you asked: no Peppol ID is known."),
    ("nl", "Wij konden dit niet via Peppol e-invoicing versturen zoals u vroeg: no Peppol ID"),
    ("es", "No pudimos enviarlo por Peppol e-invoicing como nos pidió: no Peppol ID"),
    ("de", "We could not send this by Peppol e-invoicing"),
])
def test_fallback_notice_comes_first_in_the_customer_language(language, start):
    notice = fallback_notice(language, "Peppol e-invoicing", "no Peppol ID is known")
    rendered = render("invoice", language, {**PARAMETERS, "fallback_notice": notice})

    assert notice.startswith(start)
    assert rendered.text.startswith(notice + "\n\n")
    assert rendered.html.count("<p>") == rendered.text.count("\n\n") + 1


def test_a_request_to_acknowledge_never_asks_for_a_signature():
    words = {"en": ("sign", "acknowledge"), "nl": ("ondertekenen", "bevestigen"),
             "es": ("firme", "confirme")}
    values = {"customer_name": "Ann", "seller_name": "Acme", "number": "Contract 7",
              "link": "https://portal.example/s/1"}
    for language, (sign, acknowledge) in words.items():
        to_sign = render("signature_request", language, values)
        to_read = render("signature_request", language, {**values, "mode": "acknowledge"})
        assert sign in to_sign.text and acknowledge not in to_sign.text
        assert acknowledge in to_read.text and sign not in to_read.text.replace(acknowledge, "")
        assert to_read.subject != to_sign.subject
        assert "Contract 7" in to_read.html
