"""requirements.lock pins every dependency pyproject.toml names, at a version it allows.

``make install`` installs with the lock as constraints, so a dependency added to
pyproject.toml without ``make lock`` would be installed unpinned (and unaudited), and a
narrowed range would make the install fail; either shows here first.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _locked() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_every_dependency_is_locked_at_a_version_pyproject_allows():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    locked = _locked()
    for text in wanted:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not in requirements.lock: run make lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock has {name}=={locked[name]}, which pyproject.toml's "
            f"{text!r} does not allow: run make lock")


def test_the_installed_environment_is_the_locked_one():
    from importlib.metadata import distributions

    locked = _locked()
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version)
                 for d in distributions()}
    drift = {name: (str(version), str(installed[name])) for name, version in locked.items()
             if name in installed and installed[name] != version}
    assert not drift, f"installed versions differ from requirements.lock: {drift}"
