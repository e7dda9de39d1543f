"""The backfill's Flink job (`chainfeat backfill`; job/local/backfill.py runs it, and on a cluster the application zip's
entry point builds it): the streaming job's SQL over the raw archive, in Flink's batch mode, written through the
same feature-store writer.

archive (spool or Firehose layout) → sources/archive_batch.sql → parse.sql → backfill/in_range.sql (in place of
lateness.sql) → dedup.sql → inputs_outputs.sql → features/*.sql → complete windows only → udfs/feature_store_writer.py

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

import math
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.archive_layout import ARCHIVE_HOUR_FORMAT, PARTITION_LEAD_S
from connectors.featurestore.model import FeatureGroupDefinition
from job.flow import sql_files, sql_pipeline
from job.flow.config import Deployment, JobConfig, duration_ms, flink_uri, with_defaults
from job.flow.feature_groups import FeatureFileError, file_position, view_error

if TYPE_CHECKING:  # the plan cache imports pyflink, which this module leaves to the functions that run Flink
    from job.flow.plan_cache import PlanCache

# The batch job's name in Flink (its dashboard, `chainfeat status`), locally and on a cluster.
BACKFILL_JOB_NAME = "chainfeat-backfill"
# What a backfill reports, under its report directory (a data dir's backfill/, or Backfill report.path).
REPORT_WINDOWS, REPORT_FACTS, REPORT_DEAD_LETTER = "windows", "facts", "dead_letter"
# The range's open ends: the epoch, and 9999-12-31 (Flink's TIMESTAMP_LTZ goes no further).
EARLIEST_MS, LATEST_MS = 0, 253_402_300_799_000
# The last archive partition (connectors/archive_layout.py), as sources/archive_batch.sql compares them.
LAST_HOUR = "9999-12-31 23"


class BackfillError(RuntimeError):
    pass


class UnknownGroup(BackfillError):
    """--group names a feature group that has no feature file (wrong usage)."""


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
        the range: a valid time lies at most future_tolerance_s after its poll and past_tolerance_s before it, and
        Firehose may date a poll's object up to PARTITION_LEAD_S before the poll."""
        first = "" if self.start_s is None else _hour(self.start_s - future_tolerance_s - PARTITION_LEAD_S)
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
    return datetime.fromtimestamp(max(epoch_s, 0), tz=timezone.utc).strftime(ARCHIVE_HOUR_FORMAT)


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
    def parse(cls, found: tuple[str, str]) -> WindowShape:
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
    unique_transactions (the dedup's one-second tumble, which sql/inputs_outputs.sql's views share). A view without
    exactly one window cannot say which of its rows are complete."""
    try:
        own = window_shapes(table_env.from_path(view).explain())
    except Exception as error:  # noqa: BLE001 - Flink's refusal of the view (e.g. a HOP it cannot slice), by file
        raise view_error(path, error) from None
    for shared in shared_windows:
        if shared in own:
            own.remove(shared)
    distinct = list(dict.fromkeys(own))
    if len(distinct) != 1:
        raise FeatureFileError(
            f"{file_position(path)}: a backfill needs the view to aggregate over one TUMBLE, HOP or CUMULATE window of "
            f"unique_transactions (or unique_inputs, unique_outputs) (it has {len(distinct) or 'none'}), to tell its "
            "complete windows from partial ones")
    return WindowShape.parse(distinct[0])


_WINDOWS_CACHED = "window-shapes"  # what the plan cache keeps for a backfill: each group's window
# Where a backfill reads and reports, left out of the key of its window shapes (as a run's locations are).
_BACKFILL_LOCATIONS = ("archive_uri", "backfill_windows_uri", "backfill_facts_uri")


def group_windows(table_env: Any, groups: list[FeatureGroupDefinition], paths: dict[str, Path],
                  cache: PlanCache | None = None, key: str | None = None) -> dict[str, WindowShape]:
    """Each group's window (feature_window). Finding them plans each view (explain(): ~1 s a view here), so a
    local backfill keeps them in the plan cache under the key of the statements they come from."""
    cached = cache.read_beside(_WINDOWS_CACHED, key) if cache and key else None
    if isinstance(cached, dict) and set(cached) == {definition.name for definition in groups}:
        try:
            return {name: WindowShape(**shape) for name, shape in cached.items()}
        except TypeError:  # another version's: find them again
            pass
    shared_windows = window_shapes(table_env.from_path("unique_transactions").explain())
    shapes = {definition.name: feature_window(table_env, definition.name, paths[definition.name], shared_windows)
              for definition in groups}
    if cache and key:
        cache.write_beside(_WINDOWS_CACHED, key, {name: asdict(shape) for name, shape in shapes.items()})
    return shapes


# ---- the job -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackfillSettings:
    """What a backfill reads and where it reports, as the Backfill property group (job/flow/application_properties.json)
    states it: how `chainfeat backfill --flink-url` hands a backfill to the application zip's entry point (a
    properties file with archive.uri set runs a backfill instead of the stream)."""

    archive_uri: str
    report_uri: str  # windows/, facts/ and dead_letter/ go under it (job/local/data_dir.py)
    time_range: TimeRange = field(default_factory=TimeRange)
    groups: tuple[str, ...] = ()  # default: every feature file

    def report(self, part: str) -> str:
        return f"{self.report_uri.rstrip('/')}/{part}"

    @classmethod
    def from_properties(cls, groups: dict[str, dict[str, str]], data_dir: Path) -> BackfillSettings | None:
        """The properties' backfill; None when they run the stream (no Backfill archive.uri)."""
        backfill = with_defaults(groups)["Backfill"]
        if not backfill["archive.uri"]:
            return None
        moments = [parse_moment(backfill[key]) if backfill[key] else None for key in ("from", "to")]
        return cls(archive_uri(backfill["archive.uri"]), flink_uri(backfill["report.path"], data_dir),
                   TimeRange(*moments), tuple(name.strip() for name in backfill["groups"].split(",") if name.strip()))

    def properties(self) -> dict[str, str]:
        """The Backfill property group that states these settings (read back by from_properties)."""
        return {"archive.uri": self.archive_uri, "report.path": self.report_uri, "groups": ",".join(self.groups),
                "from": "" if self.time_range.start_s is None else repr(self.time_range.start_s),
                "to": "" if self.time_range.end_s is None else repr(self.time_range.end_s)}


def selected_feature_files(features_dir: Path, groups: tuple[str, ...]) -> list[Path]:
    """The feature files of ``groups`` (default: every one); a name without a file is an UnknownGroup."""
    files = sql_files.feature_files(features_dir)
    if not groups:
        return files
    by_name = {path.stem: path for path in files}
    unknown = [name for name in groups if name not in by_name]
    if unknown:
        raise UnknownGroup(f"no feature file for {', '.join(unknown)} in {features_dir} "
                           f"(its groups: {', '.join(by_name) or 'none'})")
    return [by_name[name] for name in dict.fromkeys(groups)]


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


def build_backfill(config: JobConfig, settings: BackfillSettings, features: list[Path] | None = None,
                   rest_port: int | None = None, deployment: Deployment = Deployment.LOCAL,
                   plan_cache: PlanCache | None = None) -> BackfillJob:
    """The batch job: the same view files and feature files as the streaming job (job/flow/pipeline.py registers
    them), the windows each group computes reported with their shape and whether they are complete, the
    complete ones written. ``deployment``: where it runs, as for the streaming job (job/flow/pipeline.py)."""
    # PyFlink only here: the CLI imports this module's settings and time ranges on its start-up path.
    from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment
    from pyflink.table.expressions import col, lit

    from job.flow.flink_settings import configuration, flink_settings
    from job.flow.pipeline import (
        Pipeline,
        add_feature_store_inserts,
        add_inserts,
        planned_view,
        register_feature_store_writers,
        register_views,
    )
    from job.flow.plan_cache import PlanCache, plan_key

    features = features if features is not None else selected_feature_files(config.features_dir, settings.groups)
    config = replace(config, dead_letter_uri=settings.report(REPORT_DEAD_LETTER))
    if deployment is Deployment.LOCAL:
        # A batch job runs stage after stage: with a slot per feature group the groups' writer stages (each with its
        # Python worker) run side by side instead of one after the other. (A cluster's slots are the cluster's.)
        config = replace(config, extra_flink_config={"taskmanager.numberOfTaskSlots": str(max(1, len(features))),
                                                     **config.extra_flink_config})
    flink_settings_used = flink_settings(config, rest_port, deployment, batch=True)
    table_env = TableEnvironment.create(EnvironmentSettings.new_instance().in_batch_mode().with_configuration(
        configuration(flink_settings_used)).build())
    time_range = settings.time_range
    first_hour, last_hour = time_range.archive_hours(config.future_tolerance_s, config.past_tolerance_s)
    params = {**sql_pipeline.parameters(config), "archive_uri": settings.archive_uri, "first_hour": first_hour,
              "last_hour": last_hour, "range_from_ms": time_range.start_ms, "range_to_ms": time_range.end_ms,
              "backfill_windows_uri": settings.report(REPORT_WINDOWS), "backfill_facts_uri": settings.report(REPORT_FACTS)}
    executed: list[str] = []
    groups = register_views(table_env, config, view_files=sql_pipeline.BACKFILL_VIEWS, features=features, params=params,
                            executed=executed)
    cache = (plan_cache or PlanCache()) if deployment is Deployment.LOCAL else None
    locations = [*sql_files.locations(params), *(sql_files.sql_value(params[name]) for name in _BACKFILL_LOCATIONS)]
    shapes = group_windows(table_env, groups, {path.stem: path for path in features}, cache,
                           plan_key(executed, flink_settings_used, locations) if cache else None)
    statement_set = table_env.create_statement_set()
    for path in sql_pipeline.BACKFILL_OUTPUTS:
        add_inserts(table_env, statement_set, path, config, params)
    coverage = table_env.from_path("archive_coverage")
    complete_rows = []
    for definition in groups:
        shape = shapes[definition.name]
        end = col(definition.event_time_feature)
        windows = planned_view(table_env, definition.name).join(coverage)
        complete = ((shape.start(end) >= col("covered_from_s")) & (end <= col("covered_to_s"))).is_true
        statement_set.add_insert("backfill_windows", windows.select(
            lit(definition.name), col(definition.record_identifier).cast(DataTypes.STRING()), end, complete,
            lit(shape.describe())))
        complete_rows.append((definition, windows.where(complete).select(*[col(name) for name in definition.features])))
    register_feature_store_writers(table_env, groups, config)
    add_feature_store_inserts(statement_set, complete_rows)
    return BackfillJob(Pipeline(table_env, statement_set, groups, deployment, flink_settings_used), shapes)
