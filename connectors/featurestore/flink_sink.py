"""The Flink operator that writes feature rows to the feature store (one row per window, not per tx).

A Python scalar function called once per feature row; it runs in Flink's Python worker and uses the
same FeatureStoreClient as the CLI and the notebook. Being a function inside the job's one statement
set (not a DataStream tail) keeps the whole job one plan: the source and the dedup state are shared by
the feature windows and the late/dead-letter outputs instead of being built twice.

Writes are idempotent per (record identifier, event time): a window re-emitted after a restore from a
checkpoint overwrites itself online (equal event time: later write wins).
"""

from __future__ import annotations

from typing import Any

from pyflink.table import DataTypes
from pyflink.table.udf import FunctionContext, ScalarFunction, udf

from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig


class FeatureStoreWriter(ScalarFunction):
    """``write(row)`` puts one feature row into ``group``; returns 1. Counts rows in ``features_written``."""

    def __init__(self, group: str, columns: list[str], config: FeatureStoreConfig) -> None:
        self.group = group
        self.columns = columns
        self.config = config
        self.client: FeatureStoreClient | None = None
        self.written: Any = None

    def open(self, function_context: FunctionContext) -> None:
        self.client = FeatureStoreClient(self.config)
        self.written = function_context.get_metric_group().counter("features_written")

    def eval(self, *values: Any) -> int:
        assert self.client is not None
        self.client.put_record(self.group, dict(zip(self.columns, values)))
        self.written.inc()
        return 1

    def is_deterministic(self) -> bool:
        return False  # a side effect: the planner must neither fold nor repeat the call


def feature_store_writer(group: str, columns: list[str], config: FeatureStoreConfig):
    return udf(FeatureStoreWriter(group, columns, config), result_type=DataTypes.BIGINT())
