"""`chainfeat run`: the local feature store, the poller, the feed publisher and the Flink job (MiniCluster),
wired together on one data dir, with live counters for the progress view.

Restarts: the job resumes from the newest savepoint or retained checkpoint in the data dir, and a
replay resumes from the poll it stopped at (same time shift), so a stopped and restarted run counts no
transaction twice and loses none. ``exit_when_done`` replays to the end, waits until the job has read
everything, then stops it with a draining savepoint: every window, the last one included, is flushed.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from connectors.blockchain.poller import Poller
from connectors.blockchain.source import LIVE_URL, LiveSource, ReplaySource
from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig
from connectors.featurestore.local_server import LocalFeatureStoreServer
from connectors.spool import FeedPublisher, SpoolWriter, atomic_write
from job.config import JobConfig, load_property_groups
from job.flink_rest import FlinkRest, FlinkRestError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_RECORDING = REPO_ROOT / "tests" / "data" / "unconfirmed-65min.jsonl.gz"


class RunError(RuntimeError):
    pass


@dataclass
class RunOptions:
    data_dir: Path
    source: str = "replay"  # or "live"
    recording: Path = BUNDLED_RECORDING
    speed: float = 1.0
    exit_when_done: bool = False
    dashboard_port: int = 8081
    featurestore_port: int = 8766
    properties: Path | None = None
    live_url: str = LIVE_URL
    poll_interval_s: float = 15.0
    min_poll_interval_s: float = 5.0
    publish_interval_s: float = 2.0
    overrides: dict[str, Any] = field(default_factory=dict)


def local_dir(uri: str) -> Path:
    """The directory of a file:// URI from the job's configuration."""
    return Path(uri.removeprefix("file://"))


def latest_restore_point(savepoints: Path, checkpoints: Path) -> str | None:
    """The newest savepoint or completed retained checkpoint (a directory holding _metadata)."""
    candidates = [path.parent for path in savepoints.glob("*/_metadata")]
    candidates += [path.parent for path in checkpoints.glob("*/chk-*/_metadata")]
    if not candidates:
        return None
    return max(candidates, key=lambda path: path.stat().st_mtime).resolve().as_uri()


def committed_lines(directory: Path) -> int:
    """Lines in the committed files of a Flink filesystem sink (in-progress files are hidden)."""
    if not directory.exists():
        return 0
    total = 0
    for path in directory.rglob("*"):
        if path.is_file() and not path.name.startswith((".", "_")):
            with open(path, "rb") as handle:
                total += sum(1 for _ in handle)
    return total


class ReplayState:
    """Where a replay is (next poll index, time origin), saved after each poll so a restart resumes it."""

    def __init__(self, path: Path, recording: Path) -> None:
        self.path = path
        self.recording = str(recording.resolve())

    def load(self) -> tuple[int, float | None]:
        try:
            state = json.loads(self.path.read_text())
        except FileNotFoundError:
            return 0, None
        if state.get("recording") != self.recording:
            raise RunError(
                f"this data dir holds a replay of {state.get('recording')}; use another --data-dir "
                f"for {self.recording}, or --reset"
            )
        return int(state["next_poll"]), state.get("origin")

    def save(self, source: ReplaySource) -> None:
        state = {"recording": self.recording, "next_poll": source.index, "origin": source.origin}
        atomic_write(self.path, json.dumps(state).encode())


class LocalRun:
    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.data_dir = options.data_dir.resolve()
        self.stop_event = threading.Event()
        self.server: LocalFeatureStoreServer | None = None
        self.job_client: Any = None
        self.job_id = ""
        self.rest = FlinkRest(f"http://127.0.0.1:{options.dashboard_port}")
        self.restored_from: str | None = None
        self._threads: list[threading.Thread] = []
        self._last_dedup = (0.0, 0.0)
        groups = load_property_groups(options.properties)
        self.config = JobConfig.from_properties(groups, self.data_dir, **options.overrides)
        self.spool_dir = self.data_dir / "spool"
        self.feed_dir = local_dir(self.config.feed_uri)
        self.savepoint_dir = self.data_dir / "savepoints"
        self.publisher = FeedPublisher(self.spool_dir, self.feed_dir, ready=self._job_has_read)
        self.poller = self._make_poller()

    # ---- wiring ------------------------------------------------------------------------------------

    def _make_poller(self) -> Poller:
        options = self.options
        writer = SpoolWriter(self.spool_dir)
        if options.source == "live":
            if options.exit_when_done:
                raise RunError("--exit-when-done needs a replay: a live source never ends")
            return Poller(LiveSource(options.live_url), writer, options.poll_interval_s, options.min_poll_interval_s)
        if options.source != "replay":
            raise RunError(f"--source must be replay or live, not {options.source!r}")
        if not options.recording.exists():
            raise RunError(f"recording {options.recording} not found")
        state = ReplayState(self.data_dir / "poller" / "replay.json", options.recording)
        start, origin = state.load()
        source = ReplaySource(options.recording, options.speed, start_index=start, origin=origin,
                              sleep=self.stop_event.wait)
        return Poller(source, writer, options.poll_interval_s, options.min_poll_interval_s,
                      on_poll=lambda _poll: state.save(source))

    def start(self) -> None:
        os.environ.setdefault("FLINK_LOG_DIR", str(self.data_dir / "logs"))
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        endpoint = self.config.featurestore_endpoint_url
        if not endpoint:
            self.server = LocalFeatureStoreServer(self.data_dir, port=self.options.featurestore_port).start()
            endpoint = self.server.url
        self.client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=endpoint, region=self.config.featurestore_region))
        self.restored_from = latest_restore_point(self.savepoint_dir, local_dir(self.config.checkpoint_uri))
        # Whatever the job will (re)read at start must be one ordered file (see connectors/spool.py).
        restored_at = local_dir(self.restored_from).stat().st_mtime if self.restored_from else 0
        self.publisher.consolidate(published_after=restored_at - 120 if restored_at else 0)

        from job.pipeline import build_pipeline  # imports pyflink: keep it off the CLI's start-up path

        extra = {"execution.checkpointing.savepoint-dir": self.savepoint_dir.resolve().as_uri(),
                 **self.config.extra_flink_config}
        config = replace(self.config, featurestore_endpoint_url=endpoint, restore_from=self.restored_from,
                         extra_flink_config=extra)
        self.pipeline = build_pipeline(config, rest_port=self.options.dashboard_port)
        for definition in self.pipeline.feature_groups:
            self.client.ensure_feature_group(definition)
        self.feature_group = self.pipeline.feature_groups[0].name

        self.job_client = self.pipeline.execute_async("chainfeat")
        self.job_id = str(self.job_client.get_job_id())
        self._spawn(self.poller.run, self.stop_event, name="poller")
        self._spawn(self.publisher.run, self.stop_event, self.options.publish_interval_s, name="publisher")

    def _spawn(self, target: Any, *args: Any, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.options.dashboard_port}/#/job/running/{self.job_id}/overview"

    # ---- progress ----------------------------------------------------------------------------------

    def job_state(self) -> str:
        if not self.job_id:
            return "NOT STARTED"
        try:
            return self.rest.job(self.job_id)["state"]
        except FlinkRestError:
            pass
        try:  # the MiniCluster shuts its REST API down when the job ends
            return str(self.job_client.get_job_status().result()).split(".")[-1]
        except Exception:  # noqa: BLE001 - the cluster is gone: the job has ended
            return "ENDED"

    def counters(self) -> dict[str, Any]:
        poller = self.poller.stats.snapshot()
        try:
            metrics = self.rest.operator_metrics(self.job_id, r"Deduplicate\[\d+\]\.numRecords(In|Out)$")
            dedup_in = sum(v for k, v in metrics.items() if k.endswith("numRecordsIn"))
            dedup_out = sum(v for k, v in metrics.items() if k.endswith("numRecordsOut"))
            self._last_dedup = (dedup_in, dedup_out)
        except FlinkRestError:
            dedup_in, dedup_out = self._last_dedup  # a finished job no longer reports operator metrics
        counters = {
            "polls": poller["polls"],
            "transactions": poller["transactions"],
            "gaps": poller["gaps"],
            "poll_errors": poller["errors"],
            "duplicates": int(dedup_in - dedup_out),
            "dead_letter": committed_lines(local_dir(self.config.dead_letter_uri)),
            "late": committed_lines(local_dir(self.config.late_uri)),
            "windows_written": self.windows_written(),
            "job_state": self.job_state(),
            "restored_from": self.restored_from,
        }
        return counters

    def windows_written(self) -> int:
        if self.server is not None:
            return self.server.store.online_count(self.feature_group)
        return len(self.client.list_record_identifiers(self.feature_group))

    def latest_row(self) -> dict[str, Any] | None:
        return self.client.latest_minute_record(self.feature_group)

    # ---- endings -----------------------------------------------------------------------------------

    def wait_until_done(self, interrupted: threading.Event | None = None, timeout_s: float = 3600) -> None:
        """For exit_when_done: wait for the replay to end and the job to read all of it, then drain."""
        deadline = time.monotonic() + timeout_s
        interrupted = interrupted or threading.Event()
        while not self.poller.stats.finished or self.publisher.backlog():
            self._tick(deadline, interrupted)
        last = self.publisher.last_heartbeat
        while last is not None and not self._job_has_read(last):
            self._tick(deadline, interrupted)
        self.counters()  # keep the dedup counters from before the job finishes
        self.rest.stop_with_savepoint(self.job_id, self.savepoint_dir.resolve().as_uri(), drain=True)
        self._wait_for_terminal_state(deadline)

    def _job_has_read(self, heartbeat_time: int) -> bool:
        """Whether every line up to a poll's heartbeat has gone through the dedup: its input watermark
        reached that heartbeat's time minus the watermark delay (watermarks follow the records in order)."""
        watermark = self._dedup_watermark()
        return watermark is not None and watermark >= (heartbeat_time - self.config.watermark_delay_s) * 1000

    def _dedup_watermark(self) -> int | None:
        try:
            return self.rest.min_input_watermark(self.job_id, r"^Deduplicate")
        except FlinkRestError:
            return None

    def _tick(self, deadline: float, interrupted: threading.Event) -> None:
        if interrupted.is_set():
            raise RunError("interrupted; run the same command again to resume where it stopped")
        if time.monotonic() > deadline:
            raise RunError("the run did not finish in time; see the Flink logs under <data dir>/logs")
        state = self.job_state()
        if state in ("FAILED", "CANCELED"):
            raise RunError(f"the Flink job is {state}; see {self.data_dir / 'logs'} and {self.dashboard_url}")
        interrupted.wait(0.5)

    def _wait_for_terminal_state(self, deadline: float) -> None:
        while self.job_state() not in ("FINISHED", "CANCELED", "FAILED", "ENDED"):
            if time.monotonic() > deadline:
                raise RunError("the Flink job did not stop in time")
            time.sleep(0.3)

    def stop(self) -> str | None:
        """Stop polling and publishing (what was spooled but not published is published on the next start),
        stop the job with a savepoint (resumable), stop the feature store. Idempotent."""
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=30)
        savepoint = None
        if self.job_id and self.job_state() in ("RUNNING", "CREATED", "INITIALIZING"):
            try:
                savepoint = self.rest.stop_with_savepoint(self.job_id, self.savepoint_dir.resolve().as_uri(), drain=False)
            except FlinkRestError as error:
                log.warning("stop with savepoint failed (%s); cancelling (the last checkpoint is kept)", error)
                self.job_client.cancel().result()
        if self.server is not None:
            self.server.stop()
            self.server = None
        return savepoint

