"""Operators' message texts: checked, versioned, restored, and what the channels really send."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from distribution import template_store
from distribution.channels.base import ChannelName
from distribution.channels.email import EmailChannel, SmtpSettings
from distribution.documents import DatabaseStore
from distribution.events import events_for, verify_chain
from distribution.sending import Sender
from distribution.template_store import (
    KINDS,
    PARTS,
    PLACEHOLDERS,
    TemplateCheckError,
    TemplateKey,
    TemplateVersion,
    active_overrides,
    active_sources,
    builtin_source,
    check,
    history,
    reset,
    restore,
    save,
)
from distribution.templates import LANGUAGES, render
from tests.distribution.conftest import PUSH_SUBSCRIPTION
from tests.distribution.test_sending import PUSH, FakeChannel, released_delivery
from tests.peers import smtp as peers

smtp_peer = peers.smtp_peer

SUBJECT = TemplateKey("invoice", "email_subject", "en")
TEXT = TemplateKey("invoice", "email_text", "en")
HTML = TemplateKey("invoice", "email_html", "en")
PARAMETERS = {"customer_name": "Ann <b>Peeters</b>", "seller_name": "Testing Telecom",
              "number": "INV-1", "amount": "€ 120,15", "due_date": "31 December 2026",
              "link": "https://portal.herald.test/r/abc"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Texts cached by one test must not be what the next test's sends use.
    template_store.forget_cached()
    yield
    template_store.forget_cached()


@pytest.mark.parametrize("kind", KINDS)
def test_every_builtin_text_passes_its_own_check(kind):
    for part in PARTS:
        for language in LANGUAGES:
            key = TemplateKey(kind, part, language)
            check(key, builtin_source(key))


def test_placeholder_table_covers_what_the_builtin_texts_use():
    from jinja2 import meta

    from distribution.templates import environment_for

    for kind in KINDS:
        used = set()
        for language in LANGUAGES:
            for part in ("email_subject", "email_text"):
                key = TemplateKey(kind, part, language)
                used |= meta.find_undeclared_variables(
                    environment_for(part).parse(builtin_source(key)))
        assert used <= PLACEHOLDERS[kind], kind


def test_unknown_placeholder_is_refused_naming_it_and_the_allowed_ones(session):
    with pytest.raises(TemplateCheckError) as refused:
        save(session, TEXT, "Hello {{ customer_name }}, pay {{ iban }} now: {{ link }}",
             note="", actor="staff:1")
    message = str(refused.value)
    assert "{{ iban }}" in message
    assert "amount, customer_name, due_date, link, number, seller_name" in message
    assert history(session, TEXT) == []

    with pytest.raises(TemplateCheckError, match=r"\{\{ fee \}\}"):
        check(TEXT, "{{ fee }}")  # a reminder's placeholder, not an invoice's
    check(TemplateKey("reminder.4", "email_text", "nl"), "{{ fee }} {{ total }} {{ link }}")


@pytest.mark.parametrize(("key", "source", "word"), [
    (TEXT, "Pay here: https://pay.example.net/x instead of {{ link }}",
     "https://pay.example.net/x"),
    (TEXT, "Pay on www.example-pay.com", "www.example-pay.com"),
    (TEXT, "Questions? Write to billing@example.net.", "billing@example.net."),
    (SUBJECT, "{{ 'http' ~ '://evil.test' }} {{ number }}", None),
    (HTML, '<p><a href="https://evil.test/pay">{{ link }}</a></p>', "https://evil.test/pay"),
    (HTML, '<p><a href="{{ link }}/../../elsewhere">pay</a></p>', None),
    (HTML, '<p><img src="{{ link }}"></p>', None),
    (HTML, '<p onmouseover="steal()">{{ number }}</p>', None),
])
def test_texts_linking_anywhere_but_the_portal_are_refused(session, key, source, word):
    with pytest.raises(TemplateCheckError) as refused:
        save(session, key, source, note="", actor="staff:1")
    if word:
        assert f"'{word}'" in str(refused.value)
    assert history(session, key) == []


@pytest.mark.parametrize(("source", "fragment"), [
    ("Hello {{ customer_name }", "line 1"),
    ("{% if fee %}unfinished", "line 1"),
    ("{{ number.__class__ }}", "no calls, attributes"),
    ("{{ number|urlize }}", "filter 'urlize'"),
    ("{% for c in number %}{{ c }}{% endfor %}", "loops"),
    ("{{ number * 100000000 }}", "arithmetic"),
    ("   ", "empty"),
])
def test_syntax_errors_and_unsafe_constructs_are_refused(source, fragment):
    with pytest.raises(TemplateCheckError, match=fragment):
        check(TEXT, source)


def test_each_save_is_a_version_with_its_author_and_an_event(session):
    first = save(session, SUBJECT, "Invoice {{ number }} is ready", note="shorter",
                 actor="staff:7:billing_operator:ops@example.com")
    second = save(session, SUBJECT, "{{ seller_name }}: invoice {{ number }}", note="",
                  actor="staff:8:admin:admin@example.com")

    assert [v.version for v in history(session, SUBJECT)] == [2, 1]
    assert (first.note, first.created_by) == ("shorter", "staff:7:billing_operator:ops@example.com")
    assert active_sources(session)[("invoice", "email_subject", "en")] == second.source
    events = events_for(session, "message_template", "invoice:email_subject:en")
    assert [(e.kind, e.actor, e.payload["version"]) for e in events] == [
        ("template.saved", "staff:7:billing_operator:ops@example.com", 1),
        ("template.saved", "staff:8:admin:admin@example.com", 2)]
    assert verify_chain(session) is None

    with pytest.raises(TemplateCheckError, match="already the active text"):
        save(session, SUBJECT, second.source, note="", actor="staff:8")


def test_restore_makes_a_new_version_with_the_old_text_and_reset_returns_to_builtin(session):
    save(session, SUBJECT, "Invoice {{ number }} is ready", note="", actor="staff:1")
    save(session, SUBJECT, "Your bill {{ number }}", note="", actor="staff:1")

    restored = restore(session, SUBJECT, 1, note="", actor="staff:2")
    assert (restored.version, restored.restored_from, restored.source) == (
        3, 1, "Invoice {{ number }} is ready")
    assert render("invoice", "en", PARAMETERS, overrides=active_sources(session)).subject == \
        "Invoice INV-1 is ready"

    back = reset(session, SUBJECT, note="", actor="staff:2")
    assert (back.version, back.source) == (4, None)
    assert ("invoice", "email_subject", "en") not in active_sources(session)
    assert render("invoice", "en", PARAMETERS, overrides=active_sources(session)).subject == \
        "Your invoice INV-1 from Testing Telecom"
    assert [e.kind for e in events_for(session, "message_template",
                                       "invoice:email_subject:en")] == [
        "template.saved", "template.saved", "template.restored", "template.reset"]
    with pytest.raises(TemplateCheckError, match="no version 9"):
        restore(session, SUBJECT, 9, note="", actor="staff:2")
    with pytest.raises(TemplateCheckError, match="built-in text is already in use"):
        reset(session, SUBJECT, note="", actor="staff:2")


def test_overrides_pick_the_channel_part_and_escape_html():
    overrides = {
        ("invoice", "email_subject", "en"): "Bill {{ number }}",
        ("invoice", "email_text", "en"): "Dear {{ customer_name }}\n\n{{ link }}",
        ("invoice", "email_html", "en"):
            '<html><body><p>Dear {{ customer_name }}</p><a href="{{ link }}">pay</a></body>'
            "</html>",
        ("invoice", "push_title", "en"): "{{ number }} is here",
    }
    email = render("invoice", "en", {**PARAMETERS, "fallback_notice": "No push <today>."},
                   channel="email", overrides=overrides)
    assert email.subject == "Bill INV-1"
    assert email.text == "No push <today>.\n\nDear Ann <b>Peeters</b>\n\n" + PARAMETERS["link"]
    assert email.html == ("<html><body><p>No push &lt;today&gt;.</p><p>Dear Ann &lt;b&gt;Peeters"
                          "&lt;/b&gt;</p><a href=\"https://portal.herald.test/r/abc\">pay</a>"
                          "</body></html>")
    push = render("invoice", "en", PARAMETERS, channel="web_push", overrides=overrides)
    assert push.subject == "INV-1 is here"
    assert push.text.startswith("Hello Ann <b>Peeters</b>,")  # the built-in push body
    assert render("invoice", "nl", PARAMETERS, channel="email",
                  overrides=overrides).subject.startswith("Uw factuur")


def test_reminder_overrides_are_per_tone():
    overrides = {("reminder.4", "email_subject", "en"): "LAST: {{ number }} {{ total }}"}
    final = render("reminder", "en", {**PARAMETERS, "tone": 4, "total": "€ 130"},
                   channel="email", overrides=overrides)
    assert final.subject == "LAST: INV-1 € 130"
    friendly = render("reminder", "en", {**PARAMETERS, "tone": 1}, channel="email",
                      overrides=overrides)
    assert friendly.subject == "Reminder: invoice INV-1 is due 31 December 2026"


@pytest.fixture
def email_channel(smtp_peer):
    settings = SmtpSettings(host=smtp_peer.host, port=smtp_peer.port,
                            from_address="billing@herald.test",
                            message_id_domain="mail.herald.test", timeout=5)
    with EmailChannel(settings) as channel:
        yield channel


def test_a_saved_override_is_what_the_email_channel_sends(own_db, smtp_peer, email_channel):
    with own_db() as session, session.begin():
        save(session, SUBJECT, "{{ seller_name }} bill {{ number }}", note="", actor="staff:1")
        save(session, TEXT, "Dear {{ customer_name }},\n\nPlease pay {{ amount }}: {{ link }}",
             note="", actor="staff:1")
        save(session, HTML, '<html><body><p>Dear {{ customer_name }},</p><p><a href="{{ link }}">'
             "Pay {{ amount }}</a></p></body></html>", note="", actor="staff:1")
    delivery_id = released_delivery(own_db)

    Sender(own_db, {ChannelName.EMAIL: email_channel}, DatabaseStore()).send(delivery_id)

    (received,) = smtp_peer.messages
    mail = received.parsed()
    assert mail["Subject"] == "Testing Telecom bill INV-a"
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n").strip() == (
        "Dear Ann Peeters,\n\nPlease pay € 120,15: https://portal.herald.test/invoices/INV-a")
    assert mail.get_body(("html",)).get_content().strip() == (
        '<html><body><p>Dear Ann Peeters,</p><p><a href="https://portal.herald.test/invoices/'
        'INV-a">Pay € 120,15</a></p></body></html>')


def test_a_push_override_is_what_the_push_channel_gets(own_db):
    with own_db() as session, session.begin():
        save(session, TemplateKey("invoice", "push_title", "en"), "{{ number }}: {{ amount }}",
             note="", actor="staff:1")
        save(session, TemplateKey("invoice", "push_body", "en"), "Due {{ due_date }}",
             note="", actor="staff:1")
    delivery_id = released_delivery(own_db, invoice_channels=(PUSH,),
                                    push=PUSH_SUBSCRIPTION)
    channel = FakeChannel(PUSH)

    Sender(own_db, {PUSH: channel}, DatabaseStore()).send(delivery_id)

    (message,) = channel.sent
    assert (message.subject, message.text) == ("INV-a: € 120,15", "Due 31 December 2026")


def test_workers_pick_up_a_change_made_elsewhere_within_the_cache_time(own_db, monkeypatch):
    assert active_overrides(own_db) == {}
    with own_db() as session, session.begin():
        # As another process would: no cache of ours is told.
        session.execute(sa.insert(TemplateVersion), [{
            "kind": "invoice", "part": "email_subject", "language": "en", "version": 1,
            "source": "New {{ number }}", "note": "", "created_by": "staff:1"}])
    assert active_overrides(own_db) == {}  # cached

    later = template_store.time.monotonic() + template_store.CACHE_SECONDS + 1
    monkeypatch.setattr(template_store.time, "monotonic", lambda: later)
    assert active_overrides(own_db) == {("invoice", "email_subject", "en"): "New {{ number }}"}
