"""Texts with only ``{{ name }}`` placeholders render without Jinja, to the same result."""

from __future__ import annotations

from decimal import Decimal

import pytest
from jinja2 import UndefinedError

from distribution.templates import (
    REMINDER_TEXTS,
    TEXTS,
    _compiled,
    _html,
    _link,
    _PlainText,
    _renderer,
)

VALUES = {"customer_name": "Ann <b>&amp; 'Peeters'", "seller_name": "{{ seller_name }}",
          "number": 12345, "amount": Decimal("120.15"), "due_date": None, "link": "https://x/?a=1&b=2",
          "text": "line one\n\nline {% two %}", "fee": "€ 7,50", "total": "", "deadline": "",
          "overdue": False, "tone": 3, "mode": "acknowledge"}


def _sources():
    for languages in TEXTS.values():
        for subject, body in languages.values():
            yield subject
            yield body
    for tones in REMINDER_TEXTS.values():
        for subject, body in tones.values():
            yield subject
            yield body


@pytest.mark.parametrize("source", sorted(set(_sources())))
def test_every_built_in_text_renders_as_jinja_does(source):
    assert _renderer(source).render(VALUES) == _compiled(source).render(VALUES)


def test_the_invoice_texts_take_the_plain_path():
    for subject, body in TEXTS["invoice"].values():
        assert isinstance(_renderer(subject), _PlainText)
        assert isinstance(_renderer(body), _PlainText)


@pytest.mark.parametrize("source", [
    "Dear {{ customer_name|upper }}",        # a filter
    "{% if fee %}Fee {{ fee }}{% endif %}",  # a block
    "Hello {{- customer_name }}",            # whitespace control
    "{# a comment #}Hello {{ customer_name }}",
    "Value: {{ none }} {{ true }}",          # keywords are literals, not names
    "Hello {{ customer_name }}\n",           # Jinja drops one trailing newline
    "Hello\r\n{{ customer_name }}",          # Jinja turns \r\n into \n
])
def test_other_jinja_syntax_keeps_jinja(source):
    assert not isinstance(_renderer(source), _PlainText)
    assert _renderer(source).render(VALUES) == _compiled(source).render(VALUES)


def test_plain_text_edge_cases_match_jinja():
    for source in ("", "no placeholder at all", "{{x}}{{ y }}", "}} stray {{ x }} }}",
                   "{{ range }}"):  # a Jinja global: left to Jinja
        values = {"x": 1, "y": [1, 2]}
        assert _renderer(source).render(values) == _compiled(source).render(values)


def test_a_missing_name_fails_as_in_jinja():
    with pytest.raises(UndefinedError):
        _renderer("Hello {{ nobody }}").render({})


def test_html_escapes_lines_and_links_only_the_portal_address():
    link = "https://portal.herald.test/i?a=1&b=2"
    html = _html(f"Hi <you>\n\nPay: {link}\nor https://elsewhere.test", link)
    assert "<p>Hi &lt;you&gt;</p>" in html
    assert '<a href="https://portal.herald.test/i?a=1&amp;b=2">' in html
    assert "elsewhere.test</p>" in html and 'href="https://elsewhere' not in html
    assert _link("no link here", link) == "no link here"
