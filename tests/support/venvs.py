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
# v3 as `pip install sagemaker` gives it, every part pinned: sagemaker-core's FeatureGroup resource and
# sagemaker-mlops' feature_store helpers (3.27.0 was the newest on PyPI on 2026-12-08).
SAGEMAKER_SDK_V3 = ("sagemaker==3.27.0", "sagemaker-core==2.27.0", "sagemaker-mlops==1.27.0",
                    "sagemaker-train==1.27.0", "sagemaker-serve==1.27.0")


def cached_venv(name: str, requirements: tuple[str, ...], base_python: Path | str = sys.executable,
                timeout_s: float = 1800) -> Path:
    """The Python of a venv made from ``base_python`` holding exactly ``requirements`` (pinned), created once
    and reused; a changed pin or interpreter gets a new one. Safe when two processes want it at once."""
    version = subprocess.run([str(base_python), "-c", "import sys; print(sys.version)"], capture_output=True,
                             text=True, check=True).stdout.strip()
    digest = hashlib.sha256("\n".join([version, *sorted(requirements)]).encode()).hexdigest()[:12]
    venv = CACHE / f"{name}-{digest}"
    python = venv / "bin" / "python"
    done = venv / ".installed"  # written last: an interrupted install is redone from scratch
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one creator at a time; the others wait and reuse it
        if not done.exists():
            print(f"creating {venv} with {' '.join(requirements)} (first use only)...", file=sys.stderr, flush=True)
            subprocess.run([str(base_python), "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
            installed = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
                capture_output=True, text=True, timeout=timeout_s)
            if installed.returncode != 0:
                raise RuntimeError(f"could not install {' '.join(requirements)} into {venv} (PyPI reachable?):\n"
                                   f"{installed.stderr[-3000:]}")
            done.write_text("\n".join([version, *requirements]) + "\n")
    return python
