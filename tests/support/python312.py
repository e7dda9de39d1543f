"""A Python 3.12 with PyFlink, as Managed Flink's Flink 2.x runtimes run the job: a venv of its own, created
on first use under ~/.cache/chainfeat/venvs and reused after (this project develops on 3.11)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

from job import REPO_ROOT

VENVS = Path.home() / ".cache" / "chainfeat" / "venvs"


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
    """The venv's interpreter, with the pinned apache-flink installed (and nothing of this project's)."""
    version = subprocess.run([str(python), "-c", "import sys; print(sys.version)"], capture_output=True, text=True,
                             check=True).stdout.strip()
    requirement = flink_requirement()
    digest = hashlib.sha256(f"{version}\n{requirement}".encode()).hexdigest()[:12]
    venv = VENVS / f"py312-flink-{digest}"
    interpreter = venv / "bin" / "python"
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f"{venv.name}.lock", "w") as lock:  # another test session may be creating it
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".installed").exists():  # written last: an interrupted install is redone from scratch
            subprocess.run([str(python), "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
            result = subprocess.run([str(interpreter), "-m", "pip", "install", "--quiet", requirement],
                                    capture_output=True, text=True, timeout=1800)
            if result.returncode != 0:
                raise RuntimeError(f"pip install {requirement} for {python} failed:\n{result.stderr[-3000:]}")
            (venv / ".installed").write_text(f"{version}\n{requirement}\n")
    return interpreter
