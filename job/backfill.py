"""`chainfeat backfill`: the streaming job's SQL over the raw archive, in Flink's batch mode, written through the
same feature-store writer.

archive (spool or Firehose layout) → sources/archive_batch.sql → parse.sql → backfill/in_range.sql (in place of
lateness.sql) → dedup.sql → features/*.sql → complete windows only → udfs/feature_store_writer.py

Which windows are written: the archive covers [covered_from, covered_to) completely (backfill/coverage.sql): from
its first poll, or --from if later, to where the streaming job's watermark would stand after the archive's last
line (its highest event time minus the watermark delay), or --to if earlier. A window [start, end) is complete,
and written, if covered_from <= start and end <= covered_to; every other window is partial (the archive's edges)
and skipped, so it never overwrites a complete one. A window's start derives from its end (the feature row's
event_time) and its shape, which Flink's optimized plan of the feature view states (TUMBLE size, HOP size and
slide, CUMULATE max size and step): nothing to declare twice.

Idempotent: a window's values depend only on the archive, and the writer skips rows the online store holds as
they are; what it writes again (an entity's older window) lands offline as a second copy of the same values at
the same event time, and online keeps the newest event time. So a rerun, an interrupted run run again, or a
backfill over windows the streaming job wrote leaves the online store and the offline store read as "newest
write per (record identifier, event time)" as they were.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig
from connectors.featurestore.local.server import LocalFeatureStoreServer, read_server_info
from connectors.featurestore.model import FeatureGroupDefinition
from connectors.spool import committed_files, sink_rows
from job import sql_files
from job.config import JobConfig, duration_ms, load_property_groups
from job.data_dir import DataDir
from job.flink_rest import FlinkRest
from job.local_run import free_port, local_dir
from job.monitor import JobMonitor, TERMINAL_STATES

log = logging.getLogger(__name__)

BACKFILL_DIR = sql_files.SQL_DIR / "backfill"
# The source and the views up to unique_transactions: the streaming job's, with the batch range in place of
# lateness.sql, then the archive's coverage.
VIEW_FILES = (sql_files.SQL_DIR / "sources" / "archive_batch.sql", sql_files.SQL_DIR / "parse.sql",
              BACKFILL_DIR / "in_range.sql", sql_files.SQL_DIR / "dedup.sql", BACKFILL_DIR / "coverage.sql")
OUTPUT_FILES = (sql_files.SQL_DIR / "sinks" / "dead_letter.sql", BACKFILL_DIR / "outputs.sql")
# The range's open ends: the epoch, and 9999-12-31 (Flink's TIMESTAMP_LTZ goes no further).
EARLIEST_MS, LATEST_MS = 0, 253_402_300_799_000
# An archive partition as sources/archive_batch.sql compares them: its date=YYYY-MM-DD and hour=HH directories.
ARCHIVE_HOUR = "%Y-%m-%d %H"
LAST_HOUR = "9999-12-31 23"
_ARCHIVE_FILE = re.compile(r"date=\d{4}-\d\d-\d\d/hour=\d\d/[^/]+")


class BackfillError(RuntimeError):
    pass


class UnknownGroup(BackfillError):
    """--group names a feature group that has no feature file (wrong usage)."""


class BackfillInterrupted(BackfillError):
    pass


@dataclass(frozen=True)
class TimeRange:
    """--from / --to: transactions with from <= time < to, unix seconds (None: open)."""

    start_s: float | None = None
    end_s: float | None = None

    def __post_init__(self) -> None:
        if self.start_s is not None and self.end_s is not None and self.start_s >= self.end_s:
            raise ValueError(f"--from ({utc(self.start_s)}) must be before --to ({utc(self.end_s)})")

    @property
    def start_ms(self) -> int:
        return EARLIEST_MS if self.start_s is None else round(self.start_s * 1000)

    @property
    def end_ms(self) -> int:
        return LATEST_MS if self.end_s is None else round(self.end_s * 1000)

    def archive_hours(self, future_tolerance_s: float, past_tolerance_s: float) -> tuple[str, str]:
        """The first and last archive partition ('YYYY-MM-DD HH', the hour polled) that can hold a transaction of
        the range: a valid time lies at most future_tolerance_s after its poll and past_tolerance_s before it."""
        first = "" if self.start_s is None else _hour(self.start_s - future_tolerance_s)
        last = LAST_HOUR if self.end_s is None else _hour(min(self.end_s + past_tolerance_s, LATEST_MS / 1000 - 1))
        return first, last


def parse_moment(text: str) -> float:
    """A --from/--to value as unix seconds: unix seconds, or an ISO 8601 date/time (UTC unless it says otherwise)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T", 1) if len(text.strip()) > 10 else text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a time: give unix seconds or ISO 8601 such as 2024-05-01T00:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _hour(epoch_s: float) -> str:
    return datetime.fromtimestamp(max(epoch_s, 0), tz=timezone.utc).strftime(ARCHIVE_HOUR)


def utc(epoch_s: float | None) -> str | None:
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# ---- window shapes -----------------------------------------------------------------------------------------

_WINDOW = re.compile(r"\b(TUMBLE|HOP|CUMULATE)\(time_col=\[[^\]]*\], ((?:\w+=\[[^\]]*\](?:, )?)+)\)")
_ARGUMENT = re.compile(r"(\w+)=\[([^\]]*)\]")


@dataclass(frozen=True)
class WindowShape:
    """A feature view's window, as Flink's plan states it: a window ending at ``end`` starts at ``start(end)``."""

    kind: str  # TUMBLE, HOP or CUMULATE
    size_s: float  # TUMBLE/HOP size, CUMULATE max size
    step_s: float  # HOP slide, CUMULATE step (TUMBLE: its size)
    offset_s: float = 0.0

    def start(self, end: Any) -> Any:
        """The window start for a window end (a number, or a Table API expression of one)."""
        if self.kind != "CUMULATE":
            return end - self.size_s
        # A cumulating window starts at the max-size boundary before its first step.
        steps = (end - self.step_s - self.offset_s) / self.size_s
        whole = math.floor(steps) if isinstance(steps, (int, float)) else steps.floor()
        return whole * self.size_s + self.offset_s

    def describe(self) -> str:
        if self.kind == "TUMBLE":
            return f"TUMBLE {_seconds(self.size_s)}"
        return f"{self.kind} {_seconds(self.size_s)} {'every' if self.kind == 'HOP' else 'by'} {_seconds(self.step_s)}"

    @classmethod
    def parse(cls, found: tuple[str, str]) -> "WindowShape":
        """From a window_shapes() match: the function's name and its arguments ("size=[5 min], slide=[1 min]")."""
        kind, arguments = found
        values = {name: duration_ms(value, f"{kind} {name}") / 1000 for name, value in _ARGUMENT.findall(arguments)}
        offset = values.get("offset", 0.0)
        if kind == "TUMBLE":
            return cls(kind, values["size"], values["size"], offset)
        if kind == "HOP":
            return cls(kind, values["size"], values["slide"], offset)
        return cls(kind, values["max_size"], values["step"], offset)


def _seconds(value: float) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if value >= size and value % size == 0:
            return f"{value / size:g} {unit}"
    return f"{value:g} s"


def window_shapes(plan: str) -> list[tuple[str, str]]:
    """The window table functions in an optimized plan (explain()'s text), outermost first."""
    optimized = plan.split("== Optimized Physical Plan ==")[-1].split("== Optimized Execution Plan ==")[0]
    return _WINDOW.findall(optimized)


def feature_window(table_env: Any, view: str, path: Path, shared_windows: list[tuple[str, str]]) -> WindowShape:
    """The window of the feature view ``view``: the one its plan has beyond ``shared_windows``, those of
    unique_transactions (the dedup's one-second tumble). A view without exactly one window cannot say which of
    its rows are complete."""
    from job.pipeline import FeatureFileError, file_position

    own = window_shapes(table_env.from_path(view).explain())
    for shared in shared_windows:
        if shared in own:
            own.remove(shared)
    distinct = list(dict.fromkeys(own))
    if len(distinct) != 1:
        raise FeatureFileError(
            f"{file_position(path)}: a backfill needs the view to aggregate over one TUMBLE, HOP or CUMULATE window of "
            f"unique_transactions (it has {len(distinct) or 'none'}), to tell its complete windows from partial ones")
    return WindowShape.parse(distinct[0])


# ---- the job -----------------------------------------------------------------------------------------------

@dataclass
class BackfillJob:
    pipeline: Any  # job.pipeline.Pipeline
    windows: dict[str, WindowShape]

    @property
    def feature_groups(self) -> list[FeatureGroupDefinition]:
        return self.pipeline.feature_groups


def archive_uri(archive: str | Path) -> str:
    """A path or URI Flink's filesystem connector reads: URIs as given, paths as file:// URIs."""
    text = str(archive)
    return text if "://" in text else Path(text).resolve().as_uri()


def build_backfill(config: JobConfig, archive: str, time_range: TimeRange, data: DataDir,
                   features: list[Path] | None = None, rest_port: int | None = None) -> BackfillJob:
    """The batch job: the same view files and feature files as the streaming job (job/pipeline.py registers
    them), the windows each group computes logged with whether they are complete, the complete ones written."""
    from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment
    from pyflink.table.expressions import col, lit

    from job.jvm import configure_local_jvm
    from job.pipeline import Pipeline, add_feature_store_writes, add_inserts, flink_configuration, flink_settings, register_views

    configure_local_jvm()
    features = features if features is not None else sql_files.feature_files(config.features_dir)
    # A batch job runs stage after stage: with a slot per feature group the groups' writer stages (each with its
    # Python worker) run side by side instead of one after the other.
    config = replace(config, dead_letter_uri=data.backfill_dead_letter.resolve().as_uri(),
                     extra_flink_config={"taskmanager.numberOfTaskSlots": str(max(1, len(features))),
                                         **config.extra_flink_config})
    settings = flink_settings(config, rest_port, batch=True)
    table_env = TableEnvironment.create(
        EnvironmentSettings.new_instance().in_batch_mode().with_configuration(flink_configuration(config, rest_port, batch=True)).build())
    first_hour, last_hour = time_range.archive_hours(config.future_tolerance_s, config.past_tolerance_s)
    params = {**sql_files.parameters(config), "archive_uri": archive, "first_hour": first_hour, "last_hour": last_hour,
              "range_from_ms": time_range.start_ms,
              "range_to_ms": time_range.end_ms, "backfill_windows_uri": data.backfill_windows.resolve().as_uri(),
              "backfill_facts_uri": data.backfill_facts.resolve().as_uri()}
    groups = register_views(table_env, config, view_files=VIEW_FILES, features=features, params=params)
    paths = {path.stem: path for path in features}
    statement_set = table_env.create_statement_set()
    for path in OUTPUT_FILES:
        add_inserts(table_env, statement_set, path, config, params)
    coverage = table_env.from_path("archive_coverage")
    shared_windows = window_shapes(table_env.from_path("unique_transactions").explain())
    shapes: dict[str, WindowShape] = {}
    complete_rows = []
    for definition in groups:
        shape = shapes[definition.name] = feature_window(table_env, definition.name, paths[definition.name], shared_windows)
        end = col(definition.event_time_feature)
        windows = table_env.from_path(definition.name).join(coverage)
        complete = ((shape.start(end) >= col("covered_from_s")) & (end <= col("covered_to_s"))).is_true
        statement_set.add_insert("backfill_windows", windows.select(
            lit(definition.name), col(definition.record_identifier).cast(DataTypes.STRING()), end, complete))
        complete_rows.append((definition, windows.where(complete).select(*[col(name) for name in definition.features])))
    add_feature_store_writes(statement_set, complete_rows, config)
    return BackfillJob(Pipeline(table_env, statement_set, groups, flink_settings=settings), shapes)


def outside_archive_layout(root: Path) -> list[str]:
    """Files under a local archive that are not in a date=/hour= partition (hidden ones aside: Flink skips names
    starting with '.' or '_', as the spool's temporaries and markers)."""
    outside = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not any(part.startswith((".", "_")) for part in path.relative_to(root).parts) \
                and not _ARCHIVE_FILE.fullmatch(relative):
            outside.append(relative)
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
    dashboard_port: int = 0  # 0: any free port


@dataclass
class BackfillStatus:
    """What the progress view shows while the job runs."""

    state: str = "starting"
    stages: int = 0  # the batch job's vertices (Flink gives no row counts while a batch job reads)
    stages_finished: int = 0
    windows_written: dict[str, int] = field(default_factory=dict)  # online records per group (local store)


class Backfill:
    def __init__(self, options: BackfillOptions) -> None:
        self.options = options
        self.data = DataDir(options.data_dir.resolve())
        overrides: dict[str, Any] = {"features_dir": options.features.resolve()} if options.features else {}
        self.config = JobConfig.from_properties(load_property_groups(options.properties), self.data.root, **overrides)
        self.archive = archive_uri(options.archive or self.data.spool)
        self.features = self._feature_files()
        self.server: LocalFeatureStoreServer | None = None
        self.client: FeatureStoreClient | None = None
        self.monitor: JobMonitor | None = None
        self.job: BackfillJob | None = None
        self.rest_port = options.dashboard_port or free_port()
        self.status = BackfillStatus()
        self.started = time.monotonic()
        self.timeline: dict[str, float] = {}

    def _feature_files(self) -> list[Path]:
        files = sql_files.feature_files(self.config.features_dir)
        if not self.options.groups:
            return files
        by_name = {path.stem: path for path in files}
        unknown = [name for name in self.options.groups if name not in by_name]
        if unknown:
            raise UnknownGroup(f"no feature file for {', '.join(unknown)} in {self.config.features_dir} "
                               f"(its groups: {', '.join(by_name) or 'none'})")
        return [by_name[name] for name in dict.fromkeys(self.options.groups)]

    def _check_archive(self) -> None:
        if not self.archive.startswith("file://"):
            return  # S3 and other filesystems: Flink reads them (a missing path fails the job with its message)
        local = local_dir(self.archive)
        if not local.exists() or not any(path.is_file() for path in local.rglob("*")):
            raise BackfillError(f"no archive at {local}: run `chainfeat run` or `chainfeat poll` first (they write "
                                "the spool), or give --archive PATH_OR_URI")
        outside = outside_archive_layout(local)
        if outside:  # Flink reads the partitions only: these would be left out without a word
            raise BackfillError(f"{len(outside)} file(s) in {local} are not in the archive's layout "
                                f"date=YYYY-MM-DD/hour=HH/ (e.g. {outside[0]}): move them into their hour's "
                                "directory, or give --archive the directory that holds date=...")

    def _endpoint(self) -> str:
        """--endpoint-url, else the properties' FeatureStore endpoint.url, else the data dir's local store: the
        server running on it, or one started for the backfill (as `chainfeat run` starts it)."""
        endpoint = self.options.endpoint_url or self.config.featurestore_endpoint_url
        if endpoint:
            return endpoint
        running = read_server_info(self.data.featurestore)
        if running:
            return running["url"]
        self.server = LocalFeatureStoreServer(self.data.featurestore, port=0).start()
        return self.server.url

    def _mark(self, step: str) -> None:
        self.timeline[step] = round(time.monotonic() - self.started, 2)

    def run(self, interrupted: threading.Event) -> dict[str, Any]:
        """Build and run the backfill; returns its summary. Raises BackfillInterrupted when ``interrupted`` is
        set (the job is cancelled; running the same command again finishes it: the writes are idempotent)."""
        self._check_archive()
        os.environ.setdefault("FLINK_LOG_DIR", str(self.data.logs))
        self.data.logs.mkdir(parents=True, exist_ok=True)
        for directory in (self.data.backfill_windows, self.data.backfill_facts, self.data.backfill_dead_letter):
            shutil.rmtree(directory, ignore_errors=True)  # this backfill's report replaces the last one's
        endpoint = self._endpoint()
        config = replace(self.config, featurestore_endpoint_url=endpoint)
        self.job = build_backfill(config, self.archive, self.options.time_range, self.data, self.features, self.rest_port)
        self._mark("job_built")
        if interrupted.is_set():
            raise BackfillInterrupted("interrupted while the backfill was being built; nothing was written")
        self.client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=endpoint, region=config.featurestore_region))
        for definition in self.job.feature_groups:
            self.client.ensure_feature_group(definition)  # as `chainfeat run`: created if missing, columns added
        job_client = self.job.pipeline.execute_async("chainfeat-backfill")
        self._mark("job_submitted")
        rest = FlinkRest(f"http://127.0.0.1:{self.rest_port}")
        self.monitor = JobMonitor(rest, str(job_client.get_job_id()), job_client)
        state = self._wait(rest, interrupted)
        self._mark("ended")
        if state != "FINISHED":
            raise BackfillError(f"the backfill's Flink job ended {state} ({self.monitor.failure_cause()}); the "
                                f"windows it wrote are correct: run the same command again to finish. Logs: {self.data.logs}")
        return self.summary()

    def _wait(self, rest: FlinkRest, interrupted: threading.Event) -> str:
        assert self.monitor is not None
        while True:
            state = self.monitor.state()
            if state == "ENDED":  # the MiniCluster is gone with its job: the job's result says how it ended
                try:
                    self.monitor.job_client.get_job_execution_result().result()
                    state = "FINISHED"
                except Exception:  # noqa: BLE001 - py4j carries the Java failure; failure_cause() reads it
                    state = "FAILED"
            self.status.state = state
            if state in TERMINAL_STATES:
                return state
            if interrupted.is_set():
                self.monitor.job_client.cancel().result()
                raise BackfillInterrupted("interrupted; the windows written so far are correct")
            self._refresh(rest)
            interrupted.wait(0.3)

    def _refresh(self, rest: FlinkRest) -> None:
        """Progress from the REST API: the job's stages (vertices) finished of all; windows written so far."""
        assert self.monitor is not None
        try:
            vertices = rest.job(self.monitor.job_id).get("vertices", [])
            self.status.stages = len(vertices)
            self.status.stages_finished = sum(1 for vertex in vertices if vertex.get("status") == "FINISHED")
        except Exception:  # noqa: BLE001 - progress must never stop the backfill
            log.debug("progress refresh failed", exc_info=True)
        if self.server is not None and self.job is not None:
            self.status.windows_written = {g.name: self.server.store.online_count(g.name) for g in self.job.feature_groups}

    def summary(self) -> dict[str, Any]:
        facts = {row["name"]: row["amount"] for path in committed_files(self.data.backfill_facts) for row in sink_rows(path)}
        written: dict[str, int] = {}
        skipped: dict[str, int] = {}
        assert self.job is not None
        for definition in self.job.feature_groups:
            written[definition.name] = skipped[definition.name] = 0
        for path in committed_files(self.data.backfill_windows):
            for row in sink_rows(path):
                counts = written if row["complete"] else skipped
                counts[row["feature_group"]] = counts.get(row["feature_group"], 0) + 1
        seconds = max(time.monotonic() - self.started, 1e-9)
        transactions = int(facts.get("transactions", 0))
        return {
            "archive": self.archive,
            "from": utc(self.options.time_range.start_s),
            "to": utc(self.options.time_range.end_s),
            "covered_from": utc(facts.get("covered_from_s")),
            "covered_to": utc(facts.get("covered_to_s")),
            "lines_read": int(facts.get("lines", 0)),
            "transactions": transactions,
            "duplicates": transactions - int(facts.get("unique_transactions", 0)),
            "dead_letter": int(facts.get("dead_letter", 0)),
            "windows_written": written,
            "windows_skipped_partial": skipped,
            "window_shapes": {name: shape.describe() for name, shape in self.job.windows.items()},
            "seconds": round(seconds, 2),
            "tx_per_s": round(transactions / seconds),
            "timeline_s": dict(self.timeline),
            "dead_letter_dir": str(self.data.backfill_dead_letter),
            "data_dir": str(self.data.root),
        }

    def stop(self) -> None:
        """Stop the local store if the backfill started it (it flushes every offline row). Idempotent."""
        if self.server is not None:
            self.server.stop()
            self.server = None

