"""docs/operations.md stays true: every ``herald`` command it names exists."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def named_commands() -> set[tuple[str, ...]]:
    commands = set()
    for text in re.findall(r"`herald ([^`]+)`", DOC.read_text()):
        words = []
        for token in text.split():
            if not re.fullmatch(r"[a-z][a-z-]*", token):
                break  # an option or an argument: the command ends here
            words.append(token)
        commands.add(tuple(words))
    return commands


def test_every_command_in_the_operations_guide_exists(runner):
    commands = named_commands()
    assert ("lifecycle", "purge") in commands and ("dispatcher",) in commands
    for words in sorted(commands):
        result = runner.invoke(args=[*words, "--help"])
        assert result.exit_code == 0, f"herald {' '.join(words)}: {result.output}"
        assert "Usage: " in result.output
