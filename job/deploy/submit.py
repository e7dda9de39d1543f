"""`chainfeat submit` to a self-managed Flink cluster and `chainfeat status` from its REST API.

Submitting runs the application zip's own entry point (main.py), unchanged, with the cluster's REST
address: the same zip Managed Flink runs.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyflink

from connectors.flink_rest import DEFAULT_REST_PORT, FlinkRest, FlinkRestError
from job.deploy.package import unpack, zip_run_options
from job.timestamps import iso_utc

_SUBMITTED = re.compile(r"(?:submitted chainfeat(?:-backfill)? job|submitted with JobID) ([0-9a-f]{32})")


FLINK_HOME = Path(pyflink.__file__).resolve().parent


class SubmitError(RuntimeError):
    pass


def require_zip(zip_path: Path) -> None:
    if not zip_path.is_file():
        raise SubmitError(f"{zip_path} not found; build it with `chainfeat package`")


def submit_to_cluster(zip_path: Path, flink_url: str, properties: Path | None, data_dir: Path,
                      timeout_s: float = 600) -> str:
    """`flink run -d` of the zip's main.py, with its site-packages and jar, against the cluster at
    ``flink_url`` — the same run options Managed Flink uses; returns the job id."""
    require_zip(zip_path)
    url = urlsplit(flink_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise SubmitError(f"--flink-url must look like http://HOST:{DEFAULT_REST_PORT}, got {flink_url!r}")
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()[:16]
    root = unpack(zip_path, Path.home() / ".cache" / "chainfeat" / "submit" / digest)
    command = [str(FLINK_HOME / "bin" / "flink"), "run", "-d", "-t", "remote",
               f"-Drest.address={url.hostname}", f"-Drest.port={url.port or DEFAULT_REST_PORT}",
               "-py", "main.py", "-pyfs", zip_run_options(zip_path)["pyFiles"], "-pyclientexec", sys.executable]
    command += [arg for jar in sorted((root / "lib").glob("*.jar")) for arg in ("-j", str(jar))]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYFLINK_")}
    env.update({"CHAINFEAT_DETACHED": "1", "CHAINFEAT_DATA_DIR": str(data_dir.resolve()), "PYTHONPATH": ""})
    if properties:
        env["CHAINFEAT_PROPERTIES"] = str(properties.resolve())
    try:
        result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise SubmitError(f"submitting to {flink_url} did not finish within {timeout_s:.0f}s") from None
    output = result.stdout + "\n" + result.stderr
    (root / "submit.log").write_text(output)
    found = _SUBMITTED.search(output)
    if result.returncode != 0 or not found:
        causes = [line.strip() for line in output.splitlines()
                  if re.match(r"\s*(\w+\.)*\w+(Error|Exception)\b", line) and not line.strip().startswith("at ")]
        raise SubmitError(f"submitting to {flink_url} failed (exit {result.returncode}): "
                          + " | ".join(causes[-3:]) + f"\nfull output: {root / 'submit.log'}")
    return found.group(1)


def job_status(flink_url: str, job_id: str | None = None) -> dict[str, Any]:
    """State, uptime, last checkpoint and records in/out per operator chain of a job (default: newest)."""
    rest = FlinkRest(flink_url)
    if job_id is None:
        jobs = rest.get("/jobs/overview")["jobs"]
        if not jobs:
            raise SubmitError(f"no job on the Flink cluster at {flink_url}")
        job_id = max(jobs, key=lambda job: job["start-time"])["jid"]
    job = rest.job(job_id)
    try:
        checkpoints = rest.get(f"/jobs/{job_id}/checkpoints")
    except FlinkRestError:  # a batch job (a backfill) has no checkpoints: Flink answers with an error
        checkpoints = {}
    latest = (checkpoints.get("latest") or {}).get("completed") or {}
    return {
        "job_id": job_id,
        "name": job["name"],
        "state": job["state"],
        "uptime_s": round(job["duration"] / 1000, 1),
        "last_checkpoint": {
            "id": latest.get("id"),
            "completed_at": iso_utc(latest["latest_ack_timestamp"] / 1000)
            if latest.get("latest_ack_timestamp") else None,
            "duration_ms": latest.get("end_to_end_duration"),
            "size_bytes": latest.get("state_size"),
        } if latest else None,
        "operators": [
            {"name": vertex["name"][:100], "records_in": vertex["metrics"]["read-records"],
             "records_out": vertex["metrics"]["write-records"], "status": vertex["status"]}
            for vertex in job["vertices"]
        ],
    }
