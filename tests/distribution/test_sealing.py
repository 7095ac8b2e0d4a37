"""Sealing secrets at rest: AES-256-GCM under keys derived from SECRET_KEY."""

from __future__ import annotations

import pytest

from distribution.sealing import Keyring, SealingError, is_sealed


def test_a_sealed_value_opens_to_the_plain_text_and_hides_it():
    ring = Keyring(["first key"])
    sealed = ring.seal("JBSWY3DPEHPK3PXP", "totp")
    assert is_sealed(sealed) and "JBSWY3DPEHPK3PXP" not in sealed
    assert ring.open(sealed, "totp") == "JBSWY3DPEHPK3PXP"
    assert ring.seal("JBSWY3DPEHPK3PXP", "totp") != sealed  # a fresh nonce each time


def test_a_value_sealed_for_one_column_does_not_open_in_another():
    ring = Keyring(["first key"])
    with pytest.raises(SealingError, match="damaged or was moved"):
        ring.open(ring.seal("whsec_x", "webhook"), "totp")


def test_a_tampered_value_does_not_open():
    ring = Keyring(["first key"])
    sealed = ring.seal("whsec_x", "webhook")
    body = sealed.rsplit(":", 1)[1]
    flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    with pytest.raises(SealingError, match="damaged"):
        ring.open(sealed.rsplit(":", 1)[0] + ":" + flipped, "webhook")


def test_an_old_key_opens_while_listed_and_the_error_names_the_fix_when_not():
    old = Keyring(["old key"])
    sealed = old.seal("secret", "webhook")
    rotated = Keyring(["new key", "old key"])
    assert rotated.open(sealed, "webhook") == "secret"
    assert not rotated.is_current(sealed) and rotated.is_current(rotated.seal("s", "webhook"))
    with pytest.raises(SealingError, match="SECRET_KEY_FALLBACKS"):
        Keyring(["new key"]).open(sealed, "webhook")


def test_values_stored_before_sealing_read_as_they_are():
    assert Keyring(["k"]).open("JBSWY3DPEHPK3PXP", "totp") == "JBSWY3DPEHPK3PXP"


def test_no_key_is_refused_with_the_setting_named():
    with pytest.raises(SealingError, match="SECRET_KEY"):
        Keyring([""])
