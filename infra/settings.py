"""Deployment settings of the CDK app (names, sizes), with defaults; override with `cdk -c key=value`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

POLLER_METRICS_NAMESPACE = "chainfeat/Poller"  # the poller's PutMetricData namespace, on the dashboard


@dataclass(frozen=True)
class InfraSettings:
    prefix: str = "chainfeat"
    stream_name: str = "chainfeat-ingest"
    poll_interval_s: int = 15
    flink_parallelism: int = 1
    flink_parallelism_per_kpu: int = 1
    start_application: int = 1  # 1: start the Flink application after its first deploy
    compaction_schedule: str = "cron(20 * * * ? *)"  # hourly; SageMaker has flushed an hour by then
    compaction_min_age_hours: int = 2
    job_zip: str = ""  # the zip from `chainfeat package`; empty: built at synth from this checkout
    alarm_email: str = ""  # subscribed to the alarm topic when set
    no_features_minutes: int = 5
    dead_letter_alarm_per_5_min: int = 50
    stream_alarm_percent_of_shard: int = 50  # alarm when the stream's one shard is this full (bytes or records)

    @classmethod
    def context_keys(cls) -> list[str]:
        return [field.name for field in fields(cls)]

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> InfraSettings:
        known = {field.name: field.type for field in fields(cls)}
        values = {name: (int(value) if known[name] in ("int", int) else str(value))
                  for name, value in context.items() if name in known and value is not None}
        return cls(**values)
