"""requirements.lock covers pyproject.toml: every dependency named there (with the test extra) is locked at a
version its specifier allows, so `scripts/setup.sh` (which installs only the lock) cannot miss one. After editing
pyproject.toml, run `make lock`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_dependency_is_locked_at_an_allowed_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["test"]]]
    locked = {
        _norm(m.group(1)): m.group(2)
        for m in re.finditer(
            r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", (ROOT / "requirements.lock").read_text(), re.M
        )
    }
    problems = [
        f"{req} (locked: {locked.get(_norm(req.name))})"
        for req in wanted
        if _norm(req.name) not in locked
        or not req.specifier.contains(locked[_norm(req.name)], prereleases=True)
    ]
    assert not problems, "run `make lock`: " + ", ".join(problems)
