"""Watching a running job through Flink's REST API (the dashboard's): its state, its restarts, checkpoints
on request and stop-with-savepoint. Used by `chainfeat run`; the wiring is local_run.py."""

from __future__ import annotations

import logging
import time
from typing import Any

from job.flink_rest import FlinkRest, FlinkRestError

log = logging.getLogger(__name__)

TERMINAL_STATES = ("FINISHED", "CANCELED", "FAILED", "ENDED")


class JobMonitor:
    def __init__(self, rest: FlinkRest, job_id: str, job_client: Any = None,
                 checkpoint_every_s: float = 1.0) -> None:
        self.rest = rest
        self.job_id = job_id
        self.job_client = job_client
        self.checkpoint_every_s = checkpoint_every_s
        self._last_checkpoint_request = 0.0
        self._restarts = 0

    def state(self) -> str:
        try:
            return self.rest.job(self.job_id)["state"]
        except FlinkRestError:
            pass
        if self.job_client is None:
            return "ENDED"
        try:  # the MiniCluster shuts its REST API down when the job ends
            return str(self.job_client.get_job_status().result()).split(".")[-1]
        except Exception:  # noqa: BLE001 - the cluster is gone: the job has ended
            return "ENDED"

    def restarts(self) -> int:
        """How often Flink restarted the job after a failure (the last value read once it has ended)."""
        try:
            self._restarts = int(self.rest.job_metrics(self.job_id, ["numRestarts"]).get("numRestarts", self._restarts))
        except FlinkRestError:
            pass
        return self._restarts

    def request_checkpoint(self) -> None:
        """Ask for a checkpoint, at most once per ``checkpoint_every_s`` (the feed publisher waits for one)."""
        now = time.monotonic()
        if now - self._last_checkpoint_request < self.checkpoint_every_s:
            return
        self._last_checkpoint_request = now
        try:
            self.rest.trigger_checkpoint(self.job_id)
        except FlinkRestError as error:
            log.debug("checkpoint request failed (the job may be restarting): %s", error)

    def stop_with_savepoint(self, directory: str, drain: bool) -> str:
        return self.rest.stop_with_savepoint(self.job_id, directory, drain=drain)

    def wait_for_end(self, deadline: float) -> str:
        while (state := self.state()) not in TERMINAL_STATES:
            if time.monotonic() > deadline:
                raise FlinkRestError("the Flink job did not stop in time")
            time.sleep(0.3)
        return state
