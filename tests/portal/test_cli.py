"""The ``herald`` command: database commands, and refusing to run on an old schema."""

from __future__ import annotations

import subprocess
import sys

from portal import create_app
from portal.migrate import head_revision


def _app(databases, tmp_path):
    return create_app({"DATABASE_URL": databases.new_url(),
                       "HERALD_INSTANCE_PATH": str(tmp_path)})


def test_db_upgrade_then_again(databases, tmp_path):
    runner = _app(databases, tmp_path).test_cli_runner()
    first = runner.invoke(args=["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert f"upgraded from (empty) to {head_revision()}" in first.output
    second = runner.invoke(args=["db", "upgrade"])
    assert f"already at {head_revision()}" in second.output
    check = runner.invoke(args=["db", "check"])
    assert check.exit_code == 0 and "matches the models" in check.output


def test_serve_and_worker_refuse_an_unmigrated_database(databases, tmp_path):
    runner = _app(databases, tmp_path).test_cli_runner()
    for command in (["serve"], ["worker"]):
        result = runner.invoke(args=command)
        assert result.exit_code != 0
        assert "run 'herald db upgrade' first" in result.output


def test_console_script_lists_the_commands(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "from portal.cli import main; main()", "--help"],
        capture_output=True, text=True, env={"HERALD_INSTANCE_PATH": str(tmp_path),
                                             "PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 0, result.stderr
    for command in ("demo", "serve", "worker", "db", "invoices"):
        assert f"  {command} " in result.stdout
