"""The Dockerfiles cannot be built here (no Docker engine): lint them with hadolint, check that every
path they COPY from the build context exists, and that the poller image's code imports without Flink."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DOCKERFILES = sorted(REPO_ROOT.glob("Dockerfile*"))


def copy_sources(dockerfile: Path) -> list[str]:
    sources = []
    for line in dockerfile.read_text().splitlines():
        match = re.match(r"^\s*COPY\s+(?!--from)(.+)$", line)
        if match:
            *paths, _destination = match.group(1).split()
            sources += paths
    return sources


def test_there_are_a_poller_and_a_job_image() -> None:
    assert [path.name for path in DOCKERFILES] == ["Dockerfile.job", "Dockerfile.poller"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_every_copied_path_exists(dockerfile: Path) -> None:
    sources = copy_sources(dockerfile)
    assert sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), f"{dockerfile.name} copies {source}, which is not in the repository"


def test_poller_image_code_runs_without_flink(tmp_path) -> None:
    """Lay out /app as Dockerfile.poller does and check its service starts far enough to need a stream."""
    app = tmp_path / "app"
    for source in copy_sources(REPO_ROOT / "Dockerfile.poller"):
        if source.startswith("connectors"):
            target = app / "connectors" / Path(source).name if source.count("/") == 1 else app / source
            target.parent.mkdir(parents=True, exist_ok=True)
            if (REPO_ROOT / source).is_dir():
                shutil.copytree(REPO_ROOT / source, target)
            else:
                shutil.copy(REPO_ROOT / source, target)
    probe = ("import sys, importlib.abc\n"
             "class Block(importlib.abc.MetaPathFinder):\n"
             "    def find_spec(self, name, *a):\n"
             "        if name.split('.')[0] in ('pyflink', 'pyarrow', 'duckdb', 'job', 'typer'):\n"
             "            raise ImportError(name + ' is not in the poller image')\n"
             "sys.meta_path.insert(0, Block())\n"
             "import connectors\n"
             "print('connectors from', connectors.__file__, file=sys.stderr)\n"
             "from connectors.kinesis.poller_service import main\n"
             "sys.exit(main([]))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=app, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(app)})
    assert result.returncode == 2, result.stderr
    assert f"connectors from {app}" in result.stderr  # the image's copy, not this checkout
    assert "CHAINFEAT_STREAM" in result.stderr
