"""The job's configuration: Managed Flink property groups, one source of truth for local and AWS.

On Managed Flink the job reads /etc/flink/application_properties.json; locally job/application_properties.json
(or ``--properties FILE``). Relative paths in it are resolved against the data dir.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from job.sql_files import FEATURES_DIR, SQL_DIR, render

SOURCE_TYPES = ("spool", "kinesis")
DEFAULT_PROPERTIES = Path(__file__).resolve().parent / "application_properties.json"
MANAGED_FLINK_PROPERTIES = Path("/etc/flink/application_properties.json")


class ConfigError(ValueError):
    pass


def load_property_groups(path: Path | None = None) -> dict[str, dict[str, str]]:
    """``{PropertyGroupId: PropertyMap}`` from a Managed Flink properties file."""
    if path is None:
        path = MANAGED_FLINK_PROPERTIES if MANAGED_FLINK_PROPERTIES.exists() else DEFAULT_PROPERTIES
    try:
        groups = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read properties file {path}: {error}") from None
    if not isinstance(groups, list) or not all("PropertyGroupId" in group for group in groups):
        raise ConfigError(f"{path} must be a list of {{PropertyGroupId, PropertyMap}} objects")
    return {group["PropertyGroupId"]: dict(group.get("PropertyMap") or {}) for group in groups}


def _uri(value: str, data_dir: Path) -> str:
    """A Flink filesystem URI: URIs stay, absolute paths become file://, relative ones go under data_dir."""
    if "://" in value:
        return value
    path = Path(value)
    return (path if path.is_absolute() else data_dir / path).resolve().as_uri()


def _fragment(name: str, params: Mapping[str, object]) -> str:
    """A .sql file that other files include (a column list): its lines without the leading comment."""
    text = render(SQL_DIR / name, params)
    return "\n".join(line for line in text.splitlines() if not line.startswith("--")).rstrip()


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


_DURATION_UNITS_MS = {"ms": 1, "s": 1000, "sec": 1000, "min": 60_000, "h": 3_600_000}


def duration_ms(value: str, name: str = "duration") -> int:
    """A Flink duration such as '10 s', '500 ms', '3 h' in milliseconds (a bare number is ms, as in Flink)."""
    number, _, unit = value.strip().partition(" ")
    try:
        return round(float(number) * _DURATION_UNITS_MS[unit.strip() or "ms"])
    except (KeyError, ValueError):
        raise ConfigError(f"{name} must be a duration like '10 s' ({', '.join(_DURATION_UNITS_MS)}), got {value!r}") from None


@dataclass(frozen=True)
class JobConfig:
    data_dir: Path
    source_type: str = "spool"
    feed_uri: str = ""
    monitor_interval_s: float | None = 1.0  # None: bounded (read what is there, then finish)
    watermark_delay_s: int = 60
    future_tolerance_s: int = 600
    dedup_ttl: str = "3 h"
    idle_timeout: str = "30 s"
    checkpoint_interval: str = "10 s"
    checkpoint_uri: str = ""
    dead_letter_uri: str = ""
    late_uri: str = ""
    progress_uri: str = ""
    features_dir: Path = FEATURES_DIR
    kinesis_stream_arn: str = ""
    kinesis_init_position: str = "TRIM_HORIZON"
    kinesis_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    featurestore_endpoint_url: str | None = None
    featurestore_region: str = "us-east-1"
    restore_from: str | None = None
    extra_flink_config: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_properties(cls, groups: Mapping[str, Mapping[str, str]], data_dir: Path, **overrides: Any) -> "JobConfig":
        source, job = groups.get("Source", {}), groups.get("Job", {})
        outputs, store = groups.get("Outputs", {}), groups.get("FeatureStore", {})
        data_dir = Path(data_dir).resolve()
        monitor = source.get("monitor.interval.s", "1")
        config = cls(
            data_dir=data_dir,
            source_type=source.get("type", "spool"),
            feed_uri=_uri(source.get("feed.path", "feed"), data_dir),
            monitor_interval_s=_seconds(monitor, "Source monitor.interval.s") if monitor else None,
            watermark_delay_s=int(_seconds(job.get("watermark.delay.s", "60"), "Job watermark.delay.s")),
            future_tolerance_s=int(_seconds(job.get("future.tolerance.s", "600"), "Job future.tolerance.s")),
            dedup_ttl=job.get("dedup.ttl", "3 h"),
            idle_timeout=job.get("idle.timeout", "30 s"),
            checkpoint_interval=job.get("checkpoint.interval", "10 s"),
            checkpoint_uri=_uri(job.get("checkpoint.path", "checkpoints"), data_dir),
            dead_letter_uri=_uri(outputs.get("dead.letter.path", "dead_letter"), data_dir),
            late_uri=_uri(outputs.get("late.path", "late"), data_dir),
            progress_uri=_uri(source.get("progress.path", "progress"), data_dir),
            features_dir=_path(job.get("features.dir", ""), FEATURES_DIR),
            kinesis_stream_arn=source.get("stream.arn", ""),
            kinesis_init_position=source.get("init.position", "TRIM_HORIZON"),
            kinesis_endpoint_url=source.get("endpoint") or None,
            aws_region=source.get("aws.region", store.get("region", "us-east-1")),
            featurestore_endpoint_url=store.get("endpoint.url") or None,
            featurestore_region=store.get("region", "us-east-1"),
        )
        config = replace(config, **overrides)
        if config.source_type not in SOURCE_TYPES:
            raise ConfigError(f"Source type {config.source_type!r} is not one of {', '.join(SOURCE_TYPES)}")
        if config.source_type == "kinesis" and not config.kinesis_stream_arn.startswith("arn:"):
            raise ConfigError("Source type 'kinesis' needs 'stream.arn' (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)")
        return config

    @property
    def sql_params(self) -> dict[str, object]:
        monitor = (
            f",\n    'source.monitor-interval' = '{round(self.monitor_interval_s * 1000)} ms'"
            if self.monitor_interval_s
            else ""
        )
        params: dict[str, object] = {
            "feed_uri": self.feed_uri,
            "monitor_option": monitor,
            "kinesis_stream_arn": self.kinesis_stream_arn,
            "kinesis_init_position": self.kinesis_init_position,
            "kinesis_endpoint_option": (
                f",\n    'aws.endpoint' = '{self.kinesis_endpoint_url}'" if self.kinesis_endpoint_url else ""
            ),
            "aws_region": self.aws_region,
            "watermark_delay_s": self.watermark_delay_s,
            "future_tolerance_s": self.future_tolerance_s,
            "dead_letter_uri": self.dead_letter_uri,
            "late_uri": self.late_uri,
            "progress_uri": self.progress_uri,
        }
        params["transaction_columns"] = _fragment("transaction_columns.sql", params)
        params["transaction_lines"] = _fragment("sources/transaction_lines.sql", params)
        return params
