"""The Flink operator that writes feature rows to the feature store (one row per window, not per tx).

A Python scalar function called once per feature row; it runs in Flink's Python worker and uses the
same FeatureStoreClient as the CLI and the notebook. Being a function inside the job's one statement
set (not a DataStream tail) keeps the whole job one plan: the source and the dedup state are shared by
the feature windows and the late/dead-letter outputs instead of being built twice.

Writes are idempotent per (record identifier, event time): a window re-emitted after a restore from a
checkpoint overwrites itself online (equal event time: later write wins).
"""

from __future__ import annotations

import time
from typing import Any

from pyflink.table import DataTypes
from pyflink.table.udf import FunctionContext, ScalarFunction, udf

from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig
from udfs.metrics import cloudwatch_metric_group


class FeatureStoreWriter(ScalarFunction):
    """``write(row)`` puts one feature row into ``group``; returns 1.

    Metrics (group ``kinesisanalytics.chainfeat``, so Managed Flink sends them to CloudWatch):
    ``features_written``, ``put_retries``, ``put_latency_ms`` (last PutRecord, retries included) and
    ``freshness_s`` = now − the newest event time written (seconds; -1 before the first write).
    """

    def __init__(self, group: str, columns: list[str], config: FeatureStoreConfig, event_time_column: str) -> None:
        self.group = group
        self.columns = columns
        self.config = config
        self.event_time_index = columns.index(event_time_column)
        self.client: FeatureStoreClient | None = None
        self.written: Any = None
        self.last_put_ms = 0
        self.newest_event_time: float | None = None

    def open(self, function_context: FunctionContext) -> None:
        self.client = FeatureStoreClient(self.config)
        metrics = cloudwatch_metric_group(function_context)
        self.written = metrics.counter("features_written")
        metrics.gauge("put_retries", lambda: self.client.retries if self.client else 0)
        metrics.gauge("put_latency_ms", lambda: self.last_put_ms)
        metrics.gauge("freshness_s", self.freshness_s)

    def freshness_s(self) -> int:
        return -1 if self.newest_event_time is None else int(time.time() - self.newest_event_time)

    def eval(self, *values: Any) -> int:
        assert self.client is not None
        started = time.perf_counter()
        self.client.put_record(self.group, dict(zip(self.columns, values)))
        self.last_put_ms = round((time.perf_counter() - started) * 1000)
        self.written.inc()
        event_time = float(values[self.event_time_index])
        self.newest_event_time = max(event_time, self.newest_event_time or event_time)
        return 1

    def is_deterministic(self) -> bool:
        return False  # a side effect: the planner must neither fold nor repeat the call


def feature_store_writer(group: str, columns: list[str], config: FeatureStoreConfig, event_time_column: str):
    return udf(FeatureStoreWriter(group, columns, config, event_time_column), result_type=DataTypes.BIGINT())
