"""The backfill's Flink job (`chainfeat backfill`; job/local/backfill.py runs it, and on a cluster the application zip's
entry point builds it): the streaming job's SQL over the raw archive, in Flink's batch mode, written through the
same feature-store writer.

archive (spool or Firehose layout) → sources/archive_batch.sql → parse.sql → backfill/in_range.sql (in place of
lateness.sql) → dedup.sql → inputs_outputs.sql → features/*.sql → complete windows only → udfs/feature_store_writer.py

Which windows are written: the streaming job's rule (udfs/coverage.py). The archive covers [covered_from,
covered_to) completely (backfill/coverage.sql): from its first poll, or --from if later, to its last poll minus the
watermark delay, or --to if earlier. A window [start, end) is complete, and written, if covered_from <= start and
end <= covered_to; every other window is partial (the archive's edges) and skipped, so it never overwrites a
complete one. A window's start derives from its end (the feature row's event_time) and its shape, which Flink's
optimized plan of the feature view states (job/flow/window_shapes.py): nothing to declare twice.

Idempotent: a window's values depend only on the archive, and the writer skips rows the online store holds as
they are; what it writes again (an entity's older window) lands offline as a second copy of the same values at
the same event time, and online keeps the newest event time. So a rerun, an interrupted run run again, or a
backfill over windows the streaming job wrote leaves the online store and the offline store read as "newest
write per (record identifier, event time)" as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.archive_layout import ARCHIVE_HOUR_FORMAT, PARTITION_LEAD_S
from connectors.featurestore.model import FeatureGroupDefinition
from job.flow import sql_files, sql_pipeline
from job.flow.config import Deployment, JobConfig, flink_uri, with_defaults
from job.flow.window_shapes import group_windows
from job.timestamps import iso_utc
from udfs.coverage import WindowShape, inside

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
# A local batch job's exchanges between its stages and its sorts' spills, uncompressed (build_backfill).
LOCAL_BATCH_EXCHANGES = {"taskmanager.network.compression.codec": "NONE", "table.exec.spill-compression.enabled": "false"}


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
            raise ValueError(f"--from ({iso_utc(self.start_s)}) must be before --to ({iso_utc(self.end_s)})")

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


# Where a backfill reads and reports, left out of the key of its window shapes (as a run's locations are).
_BACKFILL_LOCATIONS = ("archive_uri", "backfill_windows_uri", "backfill_facts_uri")


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
        # Its stages hand their rows over in files on this machine, read back at once: compressing them (LZ4, Flink's
        # default, in its Java implementation) cost more CPU than it saved (bench/HISTORY.md, 2026-12-07 backfill).
        config = replace(config, extra_flink_config={"taskmanager.numberOfTaskSlots": str(max(1, len(features))),
                                                     **LOCAL_BATCH_EXCHANGES, **config.extra_flink_config})
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
        complete = inside(shape, end, col("covered_from_s"), col("covered_to_s")).is_true
        statement_set.add_insert("backfill_windows", windows.select(
            lit(definition.name), col(definition.record_identifier).cast(DataTypes.STRING()), end, complete,
            lit(shape.describe())))
        complete_rows.append((definition, windows.where(complete).select(*[col(name) for name in definition.features])))
    register_feature_store_writers(table_env, groups, config)
    add_feature_store_inserts(statement_set, complete_rows)
    return BackfillJob(Pipeline(table_env, statement_set, groups, deployment, flink_settings_used), shapes)
