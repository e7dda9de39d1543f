"""The bits of Flink's REST API (the dashboard's) that chainfeat uses: job state, operator counters,
watermarks, and stop-with-savepoint (pyflink 2.3's JobClient cannot trigger savepoints from Python)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import urllib3

# Flink's REST port unless configured (rest.port): the dashboard of `chainfeat run` and of a cluster.
DEFAULT_REST_PORT = 8081


class FlinkRestError(RuntimeError):
    pass


class FlinkRest:
    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = urllib3.PoolManager(timeout=urllib3.Timeout(total=timeout_s), retries=False)

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(
                method, self.url + path,
                body=json.dumps(body).encode() if body is not None else None,
                headers={"Content-Type": "application/json"},
            )
        except urllib3.exceptions.HTTPError as error:
            raise FlinkRestError(f"Flink REST API at {self.url} unreachable: {error}") from None
        if response.status >= 400:
            raise FlinkRestError(f"{method} {path} -> HTTP {response.status}: {response.data[:300]!r}")
        return json.loads(response.data) if response.data else None

    def get(self, path: str) -> Any:
        return self._request("GET", path)

    def job(self, job_id: str) -> dict[str, Any]:
        return self.get(f"/jobs/{job_id}")

    def operator_metrics(self, job_id: str, pattern: str, in_task_with: str | None = None) -> dict[str, float]:
        """Operator-level metrics whose id matches ``pattern`` (e.g. r'Deduplicate\\[\\d+\\]\\.numRecordsIn'),
        summed over subtasks, keyed by the metric id without the subtask index. ``in_task_with``: only from the
        tasks (vertices) that also have a metric matching it, e.g. one operator among others of the same kind."""
        totals: dict[str, float] = {}
        regex = re.compile(pattern)
        beside = re.compile(in_task_with) if in_task_with else None
        for vertex in self.job(job_id).get("vertices", []):
            base = f"/jobs/{job_id}/vertices/{vertex['id']}/metrics"
            available = [m["id"] for m in self.get(base) or []]
            if beside is not None and not any(beside.search(name) for name in available):
                continue
            names = [name for name in available if regex.search(name)]
            if not names:
                continue
            for metric in self.get(base + "?get=" + ",".join(names)) or []:
                key = metric["id"].split(".", 1)[1] if metric["id"][0].isdigit() else metric["id"]
                totals[key] = totals.get(key, 0.0) + float(metric["value"])
        return totals

    def job_metrics(self, job_id: str, names: list[str]) -> dict[str, float]:
        """Job-level metrics (e.g. numRestarts) by name; missing ones are left out."""
        found = self.get(f"/jobs/{job_id}/metrics?get=" + ",".join(names)) or []
        return {metric["id"]: float(metric["value"]) for metric in found if "value" in metric}

    def cancel(self, job_id: str) -> None:
        self._request("PATCH", f"/jobs/{job_id}?mode=cancel")

    def trigger_checkpoint(self, job_id: str) -> str:
        """Ask for a checkpoint now (Flink 1.19+); returns the trigger id. It completes asynchronously."""
        return self._request("POST", f"/jobs/{job_id}/checkpoints", {})["request-id"]

    def stop_with_savepoint(self, job_id: str, directory: str, drain: bool, timeout_s: float = 300) -> str:
        """Stop the job with a savepoint (drain: flush every window first); returns the savepoint path."""
        trigger = self._request("POST", f"/jobs/{job_id}/stop", {"targetDirectory": directory, "drain": drain})
        request_id = trigger["request-id"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.get(f"/jobs/{job_id}/savepoints/{request_id}")
            if status["status"]["id"] == "COMPLETED":
                operation = status.get("operation") or {}
                if "failure-cause" in operation:
                    cause = operation["failure-cause"].get("stack-trace", "")[:500]
                    raise FlinkRestError(f"stop-with-savepoint failed: {cause}")
                return operation.get("location", "")
            time.sleep(0.1)
        raise FlinkRestError(f"stop-with-savepoint did not finish within {timeout_s:.0f}s")
