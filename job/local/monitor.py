"""Watching a running job through Flink's REST API (the dashboard's): its state, its restarts, checkpoints
on request and stop-with-savepoint. Used by `chainfeat run` and `chainfeat backfill` (run.py, backfill.py)."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from connectors.flink_rest import FlinkRest, FlinkRestError
from job.flow.sql_pipeline import DUPLICATES_SINK
from udfs.metric_names import METRIC_GROUP, PUT_RETRIES

log = logging.getLogger(__name__)

TERMINAL_STATES = ("FINISHED", "CANCELED", "FAILED", "ENDED")
# The operator that numbers each second's sightings of a hash (sql/dedup.sql's window Top-N): it holds them until the
# watermark passes their second, so its records in minus out are the sightings not yet deduplicated.
SIGHTINGS_OPERATOR = "WindowRank"
# The duplicates' sink (sql/sinks/duplicates.sql) as Flink names its writer: its records in are the duplicates dropped.
DUPLICATES_WRITER = rf"{DUPLICATES_SINK}\[\d+\][\W_]+Writer"  # e.g. dropped_duplicates[82]__Writer
METRICS_REFRESH_S = 0.25  # metrics.fetcher.update-interval of a local job (minicluster.py)


class RestartSummedCounter:
    """A counter read from metrics that restart at 0 when Flink restarts the job: sums every attempt."""

    def __init__(self) -> None:
        self.finished_attempts = 0.0
        self.current = 0.0

    def update(self, value: float) -> float:
        if value < self.current:  # a new attempt started counting from 0
            self.finished_attempts += self.current
        self.current = value
        return self.total

    @property
    def total(self) -> float:
        return self.finished_attempts + self.current


class RecentGrowth:
    """Whether a counter grew within the last ``window_s`` seconds: the writers' retries growing means the
    feature store is unavailable and being retried (the live view says so)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._seen = 0.0
        self._grew_at = float("-inf")

    def update(self, value: float, now: float) -> bool:
        if value > self._seen:
            self._seen, self._grew_at = value, now
        return now - self._grew_at < self.window_s


def innermost_cause(text: str) -> str:
    """The last "Caused by: ..." of a Java exception chain (a Python error raised in a UDF ends it), or its
    first line; at most 400 characters."""
    causes = [line.split("Caused by:", 1)[1].strip() for line in text.splitlines() if "Caused by:" in line]
    message = causes[-1] if causes else (text.strip().splitlines() or ["unknown cause"])[0]
    below_the_header = text.strip().partition("\n")[2]  # the first line is the outermost exception's own
    for python_error in re.findall(r"^\s*([\w.]+(?:Error|Exception): .+)$", below_the_header, re.MULTILINE)[-1:]:
        message = python_error.strip()  # the UDF's own error, clearer than the Java wrapper around it
    return message[:400]


class JobMonitor:
    def __init__(self, rest: FlinkRest, job_id: str, job_client: Any = None,
                 checkpoint_every_s: float = 0.3) -> None:
        self.rest = rest
        self.job_id = job_id
        self.job_client = job_client
        self.checkpoint_every_s = checkpoint_every_s
        self._last_checkpoint_request = 0.0
        self._restarts = 0
        self._duplicates = RestartSummedCounter()
        self._sightings_in = RestartSummedCounter()
        self._sightings_out = RestartSummedCounter()
        self._awaiting_watermark = 0
        self._store_retries = RestartSummedCounter()
        self._ended_as: str | None = None

    def state(self) -> str:
        """The job's state; once it has ended, without asking (a local MiniCluster shuts down when its job ends,
        and a question asked meanwhile waits for the shutdown)."""
        if self._ended_as is None:
            state = self._asked_state()
            if state in TERMINAL_STATES:
                self._ended_as = state
            return state
        return self._ended_as

    def _asked_state(self) -> str:
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

    def duplicates(self) -> int:
        """Re-polled transactions the job dropped: the rows of its duplicates' sink, over every attempt of the job
        (the last value read once it has ended). A duplicate counts once the watermark has passed its second, when the
        job drops it; until then it is one of awaiting_watermark(). After a Flink restart, duplicates the restored job
        drops again count twice."""
        self._read_dedup()
        return int(self._duplicates.total)

    def awaiting_watermark(self) -> int:
        """Sightings the dedup holds in seconds the watermark has not passed yet: not yet known to be duplicates or
        not (as last read by duplicates())."""
        return self._awaiting_watermark

    def _read_dedup(self) -> None:
        """The dedup's figures, read together (one reading of the task that holds both): its duplicates' sink's
        records in, and the sightings its Top-N took in and let out, each summed over the job's attempts."""
        pattern = rf"\.(?:{SIGHTINGS_OPERATOR}\[\d+\]\.numRecords(?:In|Out)|{DUPLICATES_WRITER}\.numRecordsIn)$"
        try:
            metrics = self.rest.operator_metrics(self.job_id, pattern, in_task_with=rf"\.{DUPLICATES_WRITER}\.")
        except FlinkRestError:
            return
        if not metrics:
            return
        self._duplicates.update(sum(v for k, v in metrics.items() if k.startswith(DUPLICATES_SINK)))
        rank = {k.rsplit(".", 1)[1]: v for k, v in metrics.items() if k.startswith(SIGHTINGS_OPERATOR)}
        taken_in = self._sightings_in.update(rank.get("numRecordsIn", 0.0))
        let_out = self._sightings_out.update(rank.get("numRecordsOut", 0.0))
        # Two counters of a running task are not read at one instant: never show fewer than none.
        self._awaiting_watermark = max(0, int(taken_in - let_out))

    def store_retries(self) -> int:
        """Feature-store calls the job's writers retried (an outage or throttling shows here first)."""
        pattern = r"\." + r"\.".join(METRIC_GROUP) + rf"\.{PUT_RETRIES}$"
        try:
            metrics = self.rest.operator_metrics(self.job_id, pattern)
        except FlinkRestError:
            metrics = {}
        if metrics:
            self._store_retries.update(sum(metrics.values()))
        return int(self._store_retries.total)

    def settled_duplicates(self, timeout_s: float = 10.0) -> int:
        """duplicates() once two readings a metrics refresh apart agree (the REST API serves metrics it
        fetches periodically)."""
        deadline = time.monotonic() + timeout_s
        previous = self.duplicates()
        while time.monotonic() < deadline:
            time.sleep(METRICS_REFRESH_S * 1.2)
            current = self.duplicates()
            if current == previous:
                return current
            previous = current
        return previous

    def restarts(self) -> int:
        """How often Flink restarted the job after a failure (the last value read once it has ended)."""
        try:
            self._restarts = int(self.rest.job_metrics(self.job_id, ["numRestarts"]).get("numRestarts", self._restarts))
        except FlinkRestError:
            pass
        return self._restarts

    def failure_cause(self) -> str:
        """Why the job failed, in one line: the root exception's innermost cause (REST while the cluster still
        answers, else the job's result), without stack traces."""
        text = ""
        try:
            text = (self.rest.get(f"/jobs/{self.job_id}/exceptions") or {}).get("root-exception") or ""
        except FlinkRestError:
            pass
        if not text and self.job_client is not None:
            try:
                self.job_client.get_job_execution_result().result()
            except Exception as error:  # noqa: BLE001 - py4j carries the Java exception chain as text
                text = str(error)
        return innermost_cause(text)

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
        """The savepoint's path; Flink completes a stop-with-savepoint once the job has finished."""
        savepoint = self.rest.stop_with_savepoint(self.job_id, directory, drain=drain)
        self._ended_as = "FINISHED"
        return savepoint

    def cancel(self) -> None:
        """Cancel the job: through its client where this process started it, else over REST (a cluster's job)."""
        if self.job_client is not None:
            self.job_client.cancel().result()
        else:
            self.rest.cancel(self.job_id)

    def wait_for_end(self, deadline: float) -> str:
        while (state := self.state()) not in TERMINAL_STATES:
            if time.monotonic() > deadline:
                raise FlinkRestError("the Flink job did not stop in time")
            time.sleep(0.1)
        return state
