"""The job's configuration: Managed Flink property groups, one source of truth for local and AWS.

On Managed Flink the job reads /etc/flink/application_properties.json; locally job/flow/application_properties.json
(or ``--properties FILE``). Every setting and its default is in job/flow/application_properties.json, and only
there: a properties file given instead is read over it key by key, and a key the defaults do not have is an
error (a typo must not silently fall back). Relative paths are resolved against the data dir.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from job.flow.sql_files import FEATURES_DIR, SQL_DIR
from udfs.coverage import Coverage

SOURCE_TYPES = ("spool", "kinesis")
DEFAULT_PROPERTIES = Path(__file__).resolve().parent / "application_properties.json"
MANAGED_FLINK_PROPERTIES = Path("/etc/flink/application_properties.json")
# Managed Flink's own property group in the same file: how the service starts the zip (python, jarfile, pyFiles).
RUN_OPTIONS_GROUP = "kinesis.analytics.flink.run.options"


class ConfigError(ValueError):
    pass


class Deployment(enum.Enum):
    """Where the job runs, which decides who owns the REST endpoint, the Python interpreter, checkpoints
    and restarts."""

    LOCAL = "local"  # a MiniCluster in this process (chainfeat run, tests): the job owns everything
    CLUSTER = "cluster"  # a self-managed cluster (`flink run`): it owns REST and Python
    MANAGED = "managed"  # Amazon Managed Service for Apache Flink: it also owns checkpoints and restarts


def _read_groups(path: Path) -> dict[str, dict[str, str]]:
    try:
        groups = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read properties file {path}: {error}") from None
    if not isinstance(groups, list) or not all(isinstance(group, dict) and "PropertyGroupId" in group for group in groups):
        raise ConfigError(f"{path} must be a list of {{PropertyGroupId, PropertyMap}} objects")
    return {group["PropertyGroupId"]: dict(group.get("PropertyMap") or {}) for group in groups}


def default_property_groups() -> dict[str, dict[str, str]]:
    """Every setting the job has, with its default (job/flow/application_properties.json)."""
    return _read_groups(DEFAULT_PROPERTIES)


def load_property_groups(path: Path | None = None) -> dict[str, dict[str, str]]:
    """``{PropertyGroupId: PropertyMap}`` from a Managed Flink properties file (on Managed Flink the
    service's, else the defaults file)."""
    if path is None:
        path = MANAGED_FLINK_PROPERTIES if MANAGED_FLINK_PROPERTIES.exists() else DEFAULT_PROPERTIES
    return _read_groups(Path(path))


def with_defaults(groups: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """``groups`` read over the defaults key by key; an unknown group or key is a ConfigError naming it."""
    defaults = default_property_groups()
    merged = {name: dict(values) for name, values in defaults.items()}
    for name, values in groups.items():
        if name == RUN_OPTIONS_GROUP:  # the service's, not the job's
            continue
        if name not in defaults:
            raise ConfigError(f"unknown property group {name!r}; the job's groups are {', '.join(defaults)}")
        unknown = sorted(set(values) - set(defaults[name]))
        if unknown:
            raise ConfigError(f"unknown properties in group {name}: {', '.join(unknown)}; "
                              f"its properties are {', '.join(defaults[name])}")
        merged[name].update(values)
    return merged


def flink_uri(value: str, data_dir: Path) -> str:
    """A Flink filesystem URI: URIs stay, absolute paths become file://, relative ones go under data_dir."""
    if "://" in value:
        return value
    path = Path(value)
    return (path if path.is_absolute() else data_dir / path).resolve().as_uri()


def local_path(uri: str) -> Path:
    """The path of a file:// URI from the configuration (flink_uri's inverse for local paths)."""
    return Path(uri.removeprefix("file://"))


def _path(value: str, default: Path) -> Path:
    """A directory from the properties: relative paths are the repository's (the SQL's home)."""
    if not value:
        return default
    path = Path(value)
    return path if path.is_absolute() else (SQL_DIR.parent / path).resolve()


def _seconds(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None


def _moment(value: str, name: str) -> float | None:
    """A moment in unix seconds; empty: not set."""
    if not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a time in unix seconds, got {value!r}") from None


def _count(value: str, name: str) -> int:
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, got {value!r}")
    return count


_DURATION_UNITS_MS = {"ms": 1, "s": 1000, "sec": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(value: str, name: str = "duration") -> int:
    """A Flink duration such as '10 s', '500 ms', '3 h' in milliseconds (a bare number is ms, as in Flink)."""
    number, _, unit = value.strip().partition(" ")
    try:
        return round(float(number) * _DURATION_UNITS_MS[unit.strip() or "ms"])
    except (KeyError, ValueError):
        raise ConfigError(f"{name} must be a duration like '10 s' ({', '.join(_DURATION_UNITS_MS)}), got {value!r}") from None


@dataclass(frozen=True)
class JobConfig:
    """The job's settings, typed; made by ``from_properties`` (the defaults are the properties file's)."""

    data_dir: Path
    source_type: str
    feed_uri: str
    monitor_interval_s: float | None  # None: bounded (read what is there, then finish)
    watermark_delay_s: int
    future_tolerance_s: int
    past_tolerance_s: int  # a transaction's time this long before its poll is not a real one (dead letter)
    dedup_ttl: str
    idle_timeout: str
    checkpoint_interval: str
    checkpoint_uri: str
    dead_letter_uri: str
    late_uri: str
    progress_uri: str
    computed_uri: str  # the windows the job computed, per feature group (local feed only)
    features_dir: Path
    kinesis_stream_arn: str
    kinesis_init_position: str
    kinesis_endpoint_url: str | None
    aws_region: str
    featurestore_endpoint_url: str | None
    featurestore_region: str
    featurestore_retry_timeout_s: float  # how long the writer retries a write before the job fails
    featurestore_write_concurrency: int  # BatchWriteRecord/BatchGetRecord calls a writer has in flight
    restore_from: str | None = None
    extra_flink_config: Mapping[str, str] = field(default_factory=dict)
    # Feature groups the store did not have when this job was built (a local run creates them): no writer wrote a
    # row of theirs before, so their writers skip the read that keeps a re-emitted window from a second offline
    # copy until a task restarts (udfs/feature_store_writer.py). Empty (the cluster's case): always read first.
    new_feature_groups: tuple[str, ...] = ()
    # What the polls cover completely (udfs/coverage.py): the writer skips windows outside it. A local run sets it
    # from its data dir's first poll and a replay's last; on a cluster, Job coverage.from/coverage.to.
    coverage: Coverage = field(default_factory=Coverage)

    @classmethod
    def from_properties(cls, groups: Mapping[str, Mapping[str, str]], data_dir: Path, **overrides: Any) -> JobConfig:
        merged = with_defaults(groups)
        source, job, outputs, store = merged["Source"], merged["Job"], merged["Outputs"], merged["FeatureStore"]
        data_dir = Path(data_dir).resolve()
        monitor = source["monitor.interval.s"]
        config = cls(
            data_dir=data_dir,
            source_type=source["type"],
            feed_uri=flink_uri(source["feed.path"], data_dir),
            monitor_interval_s=_seconds(monitor, "Source monitor.interval.s") if monitor else None,
            watermark_delay_s=int(_seconds(job["watermark.delay.s"], "Job watermark.delay.s")),
            future_tolerance_s=int(_seconds(job["future.tolerance.s"], "Job future.tolerance.s")),
            past_tolerance_s=int(_seconds(job["past.tolerance.s"], "Job past.tolerance.s")),
            dedup_ttl=job["dedup.ttl"],
            idle_timeout=job["idle.timeout"],
            checkpoint_interval=job["checkpoint.interval"],
            checkpoint_uri=flink_uri(job["checkpoint.path"], data_dir),
            dead_letter_uri=flink_uri(outputs["dead.letter.path"], data_dir),
            late_uri=flink_uri(outputs["late.path"], data_dir),
            progress_uri=flink_uri(source["progress.path"], data_dir),
            computed_uri=flink_uri(source["computed.path"], data_dir),
            features_dir=_path(job["features.dir"], FEATURES_DIR),
            kinesis_stream_arn=source["stream.arn"],
            kinesis_init_position=source["init.position"],
            kinesis_endpoint_url=source["endpoint"] or None,
            aws_region=source["aws.region"] or store["region"],
            featurestore_endpoint_url=store["endpoint.url"] or None,
            featurestore_region=store["region"],
            featurestore_retry_timeout_s=_seconds(store["write.retry.timeout.s"], "FeatureStore write.retry.timeout.s"),
            featurestore_write_concurrency=_count(store["write.concurrency"], "FeatureStore write.concurrency"),
            coverage=Coverage(_moment(job["coverage.from"], "Job coverage.from"),
                              _moment(job["coverage.to"], "Job coverage.to")),
        )
        config = replace(config, **overrides)
        for name in ("dedup.ttl", "idle.timeout", "checkpoint.interval"):
            duration_ms(job[name], f"Job {name}")
        if config.source_type not in SOURCE_TYPES:
            raise ConfigError(f"Source type {config.source_type!r} is not one of {', '.join(SOURCE_TYPES)}")
        if config.source_type == "kinesis" and not config.kinesis_stream_arn.startswith("arn:"):
            raise ConfigError("Source type 'kinesis' needs 'stream.arn' (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)")
        return config

    @classmethod
    def load(cls, properties: Path | None, data_dir: Path, features: Path | None = None) -> JobConfig:
        """A run's configuration: the properties file (``None``: the defaults, or Managed Flink's) resolved against
        ``data_dir``, with ``features`` (a directory of feature files) in place of its Job features.dir if given."""
        overrides: dict[str, Any] = {"features_dir": Path(features).resolve()} if features else {}
        return cls.from_properties(load_property_groups(properties), data_dir, **overrides)
