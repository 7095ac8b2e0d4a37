"""Settings come from the environment, with embedded defaults and clear errors."""

from __future__ import annotations

import stat

import pytest

from portal.config import ConfigError, Settings


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
