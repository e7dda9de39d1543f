"""The job's configuration: Managed Flink property groups, one source of truth for local and AWS.

On Managed Flink the job reads /etc/flink/application_properties.json; locally job/application_properties.json
(or ``--properties FILE``). Relative paths in it are resolved against the data dir.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

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


def _seconds(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None


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
            featurestore_endpoint_url=store.get("endpoint.url") or None,
            featurestore_region=store.get("region", "us-east-1"),
        )
        if config.source_type != "spool":
            raise ConfigError(f"Source type {config.source_type!r} is not supported by this build (use 'spool')")
        return replace(config, **overrides)

    @property
    def sql_params(self) -> dict[str, object]:
        monitor = (
            f",\n    'source.monitor-interval' = '{round(self.monitor_interval_s * 1000)} ms'"
            if self.monitor_interval_s
            else ""
        )
        return {
            "feed_uri": self.feed_uri,
            "monitor_option": monitor,
            "watermark_delay_s": self.watermark_delay_s,
            "future_tolerance_s": self.future_tolerance_s,
            "dead_letter_uri": self.dead_letter_uri,
            "late_uri": self.late_uri,
        }
