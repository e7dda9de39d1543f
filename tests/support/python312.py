"""A Python 3.12 with PyFlink, as Managed Flink's Flink 2.x runtimes run the job: a venv of its own, created
on first use under ~/.cache/chainfeat/venvs and reused after (this project develops on 3.11)."""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.support.venvs import cached_venv


def flink_requirement() -> str:
    """The project's own apache-flink pin (pyproject.toml), so both Pythons run the same Flink."""
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [dependency for dependency in dependencies if dependency.startswith("apache-flink==")]
    return pin


def find_python312() -> Path | None:
    """pyenv's 3.12 (the newest installed), else a python3.12 on PATH."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    installed = sorted((root / "versions").glob("3.12.*/bin/python3.12"),
                       key=lambda path: [int(part) for part in path.parent.parent.name.split(".") if part.isdigit()])
    if installed:
        return installed[-1]
    found = shutil.which("python3.12")
    return Path(found) if found else None


def python312_with_flink(python: Path) -> Path:
    """A venv's interpreter made from ``python`` (3.12), with the pinned apache-flink and nothing of this project's."""
    return cached_venv("py312-flink", (flink_requirement(),), base_python=python)
