"""Settings come from the environment, with embedded defaults and clear errors."""

from __future__ import annotations

import errno
import multiprocessing
import os
import stat

import pytest

from portal.config import ConfigError, Settings, persisted_secret_key


def test_defaults_need_no_variable(tmp_path):
    settings = Settings.from_env(tmp_path, {})
    assert settings.database_url == f"sqlite:///{tmp_path / 'herald.sqlite3'}"
    assert settings.huey_url is None
    assert settings.einvoice_rules_dir is None
    assert len(settings.secret_key) >= 48


def test_secret_key_is_generated_once_and_kept_private(tmp_path):
    first = Settings.from_env(tmp_path, {}).secret_key
    second = Settings.from_env(tmp_path, {}).secret_key
    assert first == second
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Settings.from_env(tmp_path / "other", {}).secret_key != first


def _key_after(barrier, folder, keys):
    barrier.wait()
    try:
        keys.put(persisted_secret_key(folder))
    except Exception as error:  # the parent reports what went wrong
        keys.put(f"error: {error!r}")


def _no_hard_links(source, target):
    raise PermissionError(errno.EPERM, "Operation not permitted", str(source))


@pytest.mark.parametrize("hard_links", [True, False], ids=["link", "no-hard-links"])
def test_processes_starting_together_share_one_complete_key(tmp_path, monkeypatch, hard_links):
    # Web, worker and dispatcher start at once on a new instance: none may read the
    # key file while another is still writing it (an empty key stops sealing). Without
    # hard links (link() refused, as on FAT) the forked racers claim it with O_EXCL.
    if not hard_links:
        monkeypatch.setattr(os, "link", _no_hard_links)
    context = multiprocessing.get_context("fork")
    for round_ in range(15):
        folder = tmp_path / str(round_)
        barrier, keys = context.Barrier(6), context.Queue()
        racers = [context.Process(target=_key_after, args=(barrier, folder, keys))
                  for _ in range(6)]
        for racer in racers:
            racer.start()
        seen = {keys.get(timeout=30) for _ in racers}
        for racer in racers:
            racer.join()
        assert len(seen) == 1 and len(seen.pop()) >= 48
        assert [path.name for path in folder.iterdir()] == ["secret_key"]  # no drafts left


def test_a_key_file_claimed_but_not_yet_written_is_waited_for(tmp_path):
    # Without hard links a racer creates the file (O_EXCL) and then writes it: another
    # reading in between finds it empty for a moment, and must wait, not give up.
    import threading

    key_file = tmp_path / "secret_key"
    key_file.write_text("")
    writer = threading.Timer(0.15, lambda: key_file.write_text("k" * 64 + "\n"))
    writer.start()
    try:
        assert persisted_secret_key(tmp_path) == "k" * 64
    finally:
        writer.join()


def test_an_empty_key_file_is_refused_with_the_fix(tmp_path):
    (tmp_path / "secret_key").write_text("")
    with pytest.raises(ConfigError, match=r"secret_key is empty: delete it"):
        Settings.from_env(tmp_path, {})


def test_environment_wins(tmp_path):
    settings = Settings.from_env(tmp_path, {"SECRET_KEY": "from-env",
                                            "DATABASE_URL": "postgresql://db/herald",
                                            "HUEY_URL": "redis://localhost:6379/0"})
    assert (settings.secret_key, settings.database_url, settings.huey_url) == (
        "from-env", "postgresql://db/herald", "redis://localhost:6379/0")
    assert not (tmp_path / "secret_key").exists()


def test_a_bad_number_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match=r"SESSION_LIFETIME_MINUTES='soon' must be a whole"):
        Settings.from_env(tmp_path, {"SESSION_LIFETIME_MINUTES": "soon"})


def test_a_missing_rules_folder_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="EINVOICE_RULES_DIR"):
        Settings.from_env(tmp_path, {"EINVOICE_RULES_DIR": str(tmp_path / "nope")})


def test_every_setting_read_from_the_environment_can_be_given_to_create_app():
    """create_app(config) passes on only names with a known prefix; a setting read from the
    environment but missing from SETTING_PREFIXES would be silently ignored there."""
    import re
    from pathlib import Path

    from portal import SETTING_PREFIXES

    root = Path(__file__).resolve().parents[2]
    sources = [root / "portal" / "config.py", root / "portal" / "oidc_settings.py",
               root / "portal" / "proxy.py", *sorted((root / "distribution").rglob("*.py"))]
    read = set()
    for source in sources:
        text = source.read_text()
        read |= set(re.findall(r'env(?:iron)?(?:\.get)?\(\s*"([A-Z][A-Z0-9_]+)"', text))
        read |= set(re.findall(r'_[a-z_]+\(env, "([A-Z][A-Z0-9_]+)"', text))
    read -= {"REMOTE_ADDR", "HTTP_X_FORWARDED_FOR"}  # WSGI environ keys, not settings
    assert read, "no setting found: the pattern no longer matches portal.config"
    assert {"OIDC_ISSUER", "REFUND_AUTO_APPROVE_LIMIT", "SECRET_KEY_FALLBACKS"} <= read
    assert sorted(name for name in read if not name.startswith(SETTING_PREFIXES)) == []
