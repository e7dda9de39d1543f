"""The layout users read (README.md "Layout", job/'s docstring) is the layout on disk: every room of job/ and every
top-level folder is described, and everything described exists."""

from __future__ import annotations

import re
import subprocess

import job
from tests.conftest import REPO_ROOT


def readme_layout() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1]


def test_every_room_of_job_is_described_where_users_look() -> None:
    rooms = sorted(path.name for path in (REPO_ROOT / "job").iterdir()
                   if path.is_dir() and (path / "__init__.py").exists())
    assert rooms == ["cli", "deploy", "flow", "local", "offline"]
    described = re.findall(r"^\s{2}(\w+)/", readme_layout(), re.MULTILINE)
    assert sorted(described) == rooms
    assert sorted(re.findall(r"^- (\w+)/", job.__doc__, re.MULTILINE)) == rooms


def test_every_top_level_folder_is_described_and_exists() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    folders = sorted({name.split("/", 1)[0] for name in tracked.split() if "/" in name and not name.startswith(".")})
    described = sorted({name for line in readme_layout().splitlines() if not line.startswith(" ")
                        for name in re.findall(r"(\w+)/", line.split("  ")[0])})
    assert described == folders
