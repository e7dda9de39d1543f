"""Virtual environments of their own for clients that do not co-install with apache-flink's pins (the
SageMaker Python SDK wants pandas 3 and rich 14): created on first use from PyPI, cached under
~/.cache/chainfeat/venvs/<name>-<hash of the pinned requirements>, so a changed pin gets a new one."""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("CHAINFEAT_CACHE", Path.home() / ".cache" / "chainfeat")) / "venvs"
SAGEMAKER_SDK = ("sagemaker==2.257.7",)  # the SDK's v2 FeatureGroup / FeatureStore API


def cached_venv(name: str, requirements: tuple[str, ...], timeout_s: float = 900) -> Path:
    """The Python of a venv holding exactly ``requirements`` (pinned), created once and reused."""
    digest = hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()[:12]
    venv = CACHE / f"{name}-{digest}"
    python = venv / "bin" / "python"
    done = venv / ".installed"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one creator at a time; the others wait and reuse it
        if not done.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
            installed = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
                capture_output=True, text=True, timeout=timeout_s)
            if installed.returncode != 0:
                raise RuntimeError(f"could not install {' '.join(requirements)} into {venv} (PyPI reachable?):\n"
                                   f"{installed.stderr[-3000:]}")
            done.write_text("\n".join(requirements) + "\n")
    return python
