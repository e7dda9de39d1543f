"""`chainfeat backfill`: the backfill's batch job (job/flow/backfill.py) run from this machine — in a local
MiniCluster, or submitted to a self-managed cluster from the application zip — watched over Flink's REST API, its
summary read from the report the job writes (every window with its shape and completeness, its counts, its dead
letter).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from connectors.atomic_files import atomic_write
from connectors.featurestore.client import FeatureStoreClient
from connectors.flink_rest import FlinkRest
from connectors.flink_sink_files import committed_files, sink_rows
from connectors.s3_archive import S3Archive, StagingError, StagingInterrupted, StagingProgress, is_s3_uri, stage_archive
from job.deploy.package import DEFAULT_ZIP
from job.deploy.submit import SubmitError, require_zip, submit_to_cluster
from job.flow.backfill import (
    BACKFILL_JOB_NAME,
    BackfillError,
    BackfillJob,
    BackfillSettings,
    TimeRange,
    archive_uri,
    build_backfill,
    selected_feature_files,
)
from job.flow.config import JobConfig, load_property_groups, local_path
from job.flow.feature_groups import ensure_feature_groups
from job.local.data_dir import DataDir
from job.local.feature_store import StoreEndpoint, open_store
from job.local.jvm import configure_local_jvm
from job.local.minicluster import free_port, minicluster_settings, planning_from_this_thread, use_log_dir
from job.local.monitor import TERMINAL_STATES, JobMonitor
from job.local.timeline import Timeline
from job.timestamps import iso_utc

log = logging.getLogger(__name__)
# A file of the archive's layout (sources/archive_batch.sql reads its partitions only).
_ARCHIVE_FILE = re.compile(r"date=\d{4}-\d\d-\d\d/hour=\d\d/[^/]+")


class BackfillInterrupted(BackfillError):
    pass


def outside_archive_layout(root: Path) -> list[str]:
    """Files under a local archive that are not in a date=/hour= partition (hidden ones aside: Flink skips names
    starting with '.' or '_', as the spool's temporaries and markers)."""
    outside = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not any(part.startswith((".", "_")) for part in relative.parts) \
                and not _ARCHIVE_FILE.fullmatch(relative.as_posix()):
            outside.append(relative.as_posix())
    return outside


# ---- running it --------------------------------------------------------------------------------------------

@dataclass
class BackfillOptions:
    data_dir: Path
    archive: str | None = None  # default: the data dir's spool
    time_range: TimeRange = field(default_factory=TimeRange)
    groups: tuple[str, ...] = ()  # default: every feature file
    features: Path | None = None
    properties: Path | None = None
    endpoint_url: str | None = None
    dashboard_port: int = 0  # 0: any free port (local MiniCluster)
    flink_url: str | None = None  # a self-managed cluster's REST address: the backfill runs there, from the zip
    zip_path: Path = DEFAULT_ZIP  # the application zip (`chainfeat package`) a cluster runs


@dataclass
class BackfillStatus:
    """What the progress view shows while the job runs."""

    state: str = "starting"
    stages: int = 0  # the batch job's vertices (Flink gives no row counts while a batch job reads)
    stages_finished: int = 0
    windows_written: dict[str, int] = field(default_factory=dict)  # online records per group (local store)
    staging: StagingProgress | None = None  # an S3 archive's objects being staged into the local cache


class Backfill:
    """A backfill run from this machine: the job in a local MiniCluster, or submitted to a cluster (the application
    zip's entry point, job/flow/entrypoint.py, builds the same job there from the properties' Backfill group), then
    watched over Flink's REST API until it ends; the summary is read from its report."""

    def __init__(self, options: BackfillOptions) -> None:
        self.options = options
        self.data = DataDir(options.data_dir.resolve())
        self.config = JobConfig.load(options.properties, self.data.root, options.features)
        self.settings = BackfillSettings(archive_uri(options.archive or self.data.spool), self.data.backfill.resolve().as_uri(),
                                         options.time_range, options.groups)
        self.features = selected_feature_files(self.config.features_dir, options.groups)
        self.store: StoreEndpoint | None = None
        self.client: FeatureStoreClient | None = None
        self.monitor: JobMonitor | None = None
        self.job: BackfillJob | None = None
        self.rest_port = options.dashboard_port or free_port()
        self.dashboard_url = (options.flink_url or f"http://127.0.0.1:{self.rest_port}").rstrip("/")
        self.status = BackfillStatus()
        self.timeline = Timeline()
        self.source_archive = self.settings.archive_uri  # what --archive named (an S3 archive is read from its copy)

    @property
    def archive(self) -> str:
        return self.source_archive

    def _stage_from_s3(self, interrupted: threading.Event) -> None:
        """Copy the S3 archive's hours the range needs into the data dir's cache (resumable), and read that copy:
        PyFlink has no S3 filesystem. (On a cluster, --flink-url, the cluster reads S3 itself.)"""
        self.status.state = "staging from S3"
        self.status.staging = StagingProgress()
        first_hour, last_hour = self.settings.time_range.archive_hours(self.config.future_tolerance_s,
                                                                       self.config.past_tolerance_s)
        try:
            local = stage_archive(S3Archive.parse(self.source_archive), self.data.archive_cache, first_hour, last_hour,
                                  self.status.staging, interrupted)
        except StagingInterrupted as error:
            raise BackfillInterrupted(f"{error} (kept: the next backfill downloads only the rest)") from None
        except StagingError as error:
            raise BackfillError(str(error)) from None
        self.timeline.mark("staged")
        self.status.state = "starting"
        self.settings = replace(self.settings, archive_uri=local.resolve().as_uri())

    def _check_archive(self) -> None:
        if not self.settings.archive_uri.startswith("file://"):
            return  # a cluster's filesystems: Flink reads them (a missing path fails the job with its message)
        local = local_path(self.settings.archive_uri)
        if not local.exists() or not any(path.is_file() for path in local.rglob("*")):
            raise BackfillError(f"no archive at {local}: run `chainfeat run` or `chainfeat poll` first (they write "
                                "the spool), or give --archive PATH_OR_URI")
        outside = outside_archive_layout(local)
        if outside:  # Flink reads the partitions only: these would be left out without a word
            raise BackfillError(f"{len(outside)} file(s) in {local} are not in the archive's layout "
                                f"date=YYYY-MM-DD/hour=HH/ (e.g. {outside[0]}): move them into their hour's "
                                "directory, or give --archive the directory that holds date=...")

    def run(self, interrupted: threading.Event) -> dict[str, Any]:
        """Build and run the backfill; returns its summary. Raises BackfillInterrupted when ``interrupted`` is
        set (the job is cancelled; running the same command again finishes it: the writes are idempotent)."""
        if is_s3_uri(self.source_archive) and not self.options.flink_url:
            self._stage_from_s3(interrupted)
        self._check_archive()
        if self.options.flink_url:
            self._check_zip()  # before anything starts (the local store, the report)
        use_log_dir(self.data.logs)
        shutil.rmtree(self.data.backfill, ignore_errors=True)  # this backfill's report replaces the last one's
        # --endpoint-url, else the properties' FeatureStore endpoint.url, else the data dir's store (as `chainfeat run`).
        self.store = open_store(self.data.featurestore, self.options.endpoint_url or self.config.featurestore_endpoint_url,
                                own_process=True)
        endpoint = self.store.url
        if self.options.flink_url:
            self.monitor = JobMonitor(FlinkRest(self.dashboard_url), self._submit(endpoint))
        else:
            self.monitor = self._start_locally(endpoint, interrupted)
        self.timeline.mark("job_submitted")
        state = self._wait(interrupted)
        self.timeline.mark("ended")
        if state != "FINISHED":
            logs = f"the cluster's logs ({self.dashboard_url})" if self.options.flink_url else str(self.data.logs)
            raise BackfillError(f"the backfill's Flink job ended {state} ({self.monitor.failure_cause()}); the "
                                f"windows it wrote are correct: run the same command again to finish. Logs: {logs}")
        return self.summary()

    def _start_locally(self, endpoint: str, interrupted: threading.Event) -> JobMonitor:
        configure_local_jvm()
        config = replace(self.config, featurestore_endpoint_url=endpoint,
                         extra_flink_config={**minicluster_settings(), **self.config.extra_flink_config})
        with planning_from_this_thread():  # the job is planned from this thread only (FLINK-23020)
            self.job = build_backfill(config, self.settings, self.features, self.rest_port)
            self.timeline.mark("job_built")
            if interrupted.is_set():
                raise BackfillInterrupted("interrupted while the backfill was being built; nothing was written")
            self.client = self.store.client(config.featurestore_region)
            ensure_feature_groups(self.client, self.job.feature_groups)  # as `chainfeat run`: created if missing
            job_client = self.job.pipeline.execute_async(BACKFILL_JOB_NAME)
        return JobMonitor(FlinkRest(self.dashboard_url), str(job_client.get_job_id()), job_client)

    def _check_zip(self) -> None:
        try:
            require_zip(self.options.zip_path)
        except SubmitError as error:
            raise BackfillError(str(error)) from None

    def _submit(self, endpoint: str) -> str:
        """`flink run` of the application zip with the properties and their Backfill group (the zip's entry point
        creates the feature groups and submits the same batch job); returns the job id."""
        groups = {name: dict(values) for name, values in load_property_groups(self.options.properties).items()}
        groups["Backfill"] = self.settings.properties()
        groups.setdefault("FeatureStore", {})["endpoint.url"] = endpoint
        groups.setdefault("Job", {})["features.dir"] = str(self.config.features_dir)
        self.data.backfill.mkdir(parents=True, exist_ok=True)
        document = [{"PropertyGroupId": name, "PropertyMap": values} for name, values in groups.items()]
        atomic_write(self.data.backfill_properties, [json.dumps(document, indent=2).encode()])
        try:
            return submit_to_cluster(self.options.zip_path, self.dashboard_url, self.data.backfill_properties, self.data.root)
        except SubmitError as error:
            raise BackfillError(str(error)) from None

    def _wait(self, interrupted: threading.Event) -> str:
        assert self.monitor is not None
        while True:
            state = self.monitor.state()
            if state == "ENDED" and self.monitor.job_client is not None:
                # The MiniCluster is gone with its job: the job's result says how it ended.
                try:
                    self.monitor.job_client.get_job_execution_result().result()
                    state = "FINISHED"
                except Exception:  # noqa: BLE001 - py4j carries the Java failure; failure_cause() reads it
                    state = "FAILED"
            self.status.state = state
            if state in TERMINAL_STATES:
                return state
            if interrupted.is_set():
                self.monitor.cancel()
                raise BackfillInterrupted("interrupted; the windows written so far are correct")
            self._refresh()
            interrupted.wait(0.3)

    def _refresh(self) -> None:
        """Progress from the REST API: the job's stages (vertices) finished of all; windows written so far."""
        assert self.monitor is not None
        try:
            vertices = self.monitor.rest.job(self.monitor.job_id).get("vertices", [])
            self.status.stages = len(vertices)
            self.status.stages_finished = sum(1 for vertex in vertices if vertex.get("status") == "FINISHED")
        except Exception:  # noqa: BLE001 - progress must never stop the backfill
            log.debug("progress refresh failed", exc_info=True)
        if self.store is not None and self.store.server is not None:
            self.status.windows_written = {path.stem: self.store.server.online_count(path.stem)
                                           for path in self.features}

    def summary(self) -> dict[str, Any]:
        """The run's figures, from its report (what the job wrote under report/): the same locally and on a cluster."""
        facts = {row["name"]: row["amount"] for path in committed_files(self.data.backfill_facts) for row in sink_rows(path)}
        names = [path.stem for path in self.features]
        written = dict.fromkeys(names, 0)
        skipped = dict.fromkeys(names, 0)
        shapes = {name: shape.describe() for name, shape in (self.job.windows if self.job else {}).items()}
        for path in committed_files(self.data.backfill_windows):
            for row in sink_rows(path):
                counts = written if row["complete"] else skipped
                counts[row["feature_group"]] = counts.get(row["feature_group"], 0) + 1
                shapes.setdefault(row["feature_group"], row["window"])
        seconds = max(time.monotonic() - self.timeline.started, 1e-9)
        transactions = int(facts.get("transactions", 0))
        staged = self.status.staging
        return {
            "archive": self.archive,
            **({"staged_objects": staged.objects, "staged_bytes": staged.bytes,
                "downloaded_objects": staged.downloaded_objects, "downloaded_bytes": staged.downloaded_bytes,
                "staged_to": local_path(self.settings.archive_uri).as_posix()} if staged else {}),
            "from": iso_utc(self.options.time_range.start_s),
            "to": iso_utc(self.options.time_range.end_s),
            "covered_from": iso_utc(facts.get("covered_from_s")),
            "covered_to": iso_utc(facts.get("covered_to_s")),
            "lines_read": int(facts.get("lines", 0)),
            "transactions": transactions,
            "duplicates": transactions - int(facts.get("unique_transactions", 0)),
            "dead_letter": int(facts.get("dead_letter", 0)),
            "windows_written": written,
            "windows_skipped_partial": skipped,
            "window_shapes": {name: shapes.get(name, "") for name in names},
            "seconds": round(seconds, 2),
            "tx_per_s": round(transactions / seconds),
            "timeline_s": self.timeline.seconds(),
            "flink": self.dashboard_url if self.options.flink_url else "local MiniCluster",
            "job_id": self.monitor.job_id if self.monitor else None,
            "dead_letter_dir": str(self.data.backfill_dead_letter),
            "data_dir": str(self.data.root),
        }

    def stop(self) -> None:
        """Stop the local store if the backfill started it (it flushes every offline row). Idempotent."""
        if self.store is not None:
            self.store.stop()
