"""Email settings from the environment: defaults, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from distribution.channels.email import SmtpSettings, SmtpSettingsError

FROM = {"MAIL_FROM": "f@herald.example"}
KEY = b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"


def test_full_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(KEY)
    settings = SmtpSettings.from_env({
        "SMTP_HOST": "smtp.relay.example", "SMTP_PORT": "2525", "SMTP_STARTTLS": "yes",
        "SMTP_SSL": "false", "SMTP_USERNAME": "herald", "SMTP_PASSWORD": "p4ss-word",
        "SMTP_TIMEOUT": "12.5", "MAIL_FROM": "factures@herald.example",
        "MAIL_FROM_NAME": "Herald Facturation", "MAIL_MESSAGE_ID_DOMAIN": "mid.herald.example",
        "MAIL_REPLY_TO": "service@herald.example",
        "DKIM_SELECTOR": "h2026", "DKIM_DOMAIN": "herald.example",
        "DKIM_PRIVATE_KEY_FILE": str(key_file),
    })
    assert settings == SmtpSettings(
        host="smtp.relay.example", port=2525, starttls=True, ssl=False, username="herald",
        password="p4ss-word", timeout=12.5, from_address="factures@herald.example",
        from_name="Herald Facturation", message_id_domain="mid.herald.example",
        reply_to="service@herald.example", dkim_selector="h2026",
        dkim_domain="herald.example", dkim_private_key=KEY)
    assert settings.dkim_enabled
    assert "p4ss-word" not in repr(settings)
    assert "PRIVATE" not in repr(settings)


def test_defaults_follow_the_tls_mode() -> None:
    local = SmtpSettings.from_env({"MAIL_FROM": "factures@herald.example"})
    assert (local.host, local.port, local.starttls, local.ssl) == ("localhost", 25, False, False)
    assert local.message_id_domain == "herald.example"
    assert local.timeout == 30 and not local.dkim_enabled

    remote = SmtpSettings.from_env({"MAIL_FROM": "f@h.example", "SMTP_HOST": "relay.example"})
    assert (remote.port, remote.starttls) == (587, True)

    implicit = SmtpSettings.from_env({"MAIL_FROM": "f@h.example", "SMTP_HOST": "relay.example",
                                      "SMTP_SSL": "1"})
    assert (implicit.port, implicit.starttls, implicit.ssl) == (465, False, True)


def test_dkim_domain_defaults_to_the_sender_domain(tmp_path: Path) -> None:
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(KEY)
    settings = SmtpSettings.from_env({"MAIL_FROM": "f@herald.example", "DKIM_SELECTOR": "s1",
                                      "DKIM_PRIVATE_KEY_FILE": str(key_file)})
    assert settings.dkim_domain == "herald.example"


@pytest.mark.parametrize(("env", "names"), [
    ({}, ["MAIL_FROM", "MAIL_FROM=invoices@example.com"]),
    ({"MAIL_FROM": "not an address"}, ["MAIL_FROM=", "not an email address"]),
    ({**FROM, "SMTP_PORT": "smtp"}, ["SMTP_PORT='smtp'", "1 to 65535"]),
    ({**FROM, "SMTP_PORT": "70000"}, ["SMTP_PORT='70000'"]),
    ({**FROM, "SMTP_STARTTLS": "maybe"}, ["SMTP_STARTTLS='maybe'", "SMTP_STARTTLS=true"]),
    ({**FROM, "SMTP_SSL": "true", "SMTP_STARTTLS": "true"},
     ["SMTP_SSL", "SMTP_STARTTLS", "both true"]),
    ({**FROM, "SMTP_TIMEOUT": "0"}, ["SMTP_TIMEOUT='0'", "above 0"]),
    ({**FROM, "SMTP_TIMEOUT": "soon"}, ["SMTP_TIMEOUT='soon'"]),
    ({**FROM, "SMTP_USERNAME": "herald"}, ["SMTP_PASSWORD is not"]),
    ({**FROM, "SMTP_PASSWORD": "secret-value"}, ["SMTP_USERNAME is not"]),
    ({**FROM, "DKIM_SELECTOR": "s1"}, ["DKIM_PRIVATE_KEY_FILE is not set"]),
    ({**FROM, "DKIM_SELECTOR": "s1", "DKIM_PRIVATE_KEY_FILE": "/nonexistent/dkim.pem"},
     ["DKIM_PRIVATE_KEY_FILE='/nonexistent/dkim.pem'", "cannot be read"]),
])
def test_malformed_values_name_the_variable_and_the_fix(env: dict[str, str],
                                                        names: list[str]) -> None:
    with pytest.raises(SmtpSettingsError) as caught:
        SmtpSettings.from_env(env)
    message = str(caught.value)
    for name in names:
        assert name in message
    assert "secret-value" not in message


def test_dkim_key_file_that_is_not_pem(tmp_path: Path) -> None:
    key_file = tmp_path / "dkim.txt"
    key_file.write_text("v=DKIM1; p=MIIB")
    with pytest.raises(SmtpSettingsError, match=r"DKIM_PRIVATE_KEY_FILE=.* is not a PEM"):
        SmtpSettings.from_env({"MAIL_FROM": "f@h.example", "DKIM_SELECTOR": "s1",
                               "DKIM_PRIVATE_KEY_FILE": str(key_file)})
