"""Fixtures of the job's tests."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.conftest import CHAINFEAT


def stand_in_jar(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
    return path


@pytest.fixture
def app_zip(tmp_path, cli_env) -> tuple[Path, dict]:
    output = tmp_path / "dist" / "app.zip"
    result = subprocess.run(
        [*CHAINFEAT, "package", "--jar", str(stand_in_jar(tmp_path / "connector.jar")), "--output", str(output),
         "--format", "json"], env=cli_env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return output, json.loads(result.stdout)
