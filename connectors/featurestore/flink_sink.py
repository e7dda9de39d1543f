"""The Flink operator that writes feature rows to the feature store (one row per window, not per tx).

It runs in Flink's Python worker and uses the same FeatureStoreClient as the CLI and the notebook.
Writes are idempotent per (record identifier, event time): a window re-emitted after a restore from a
checkpoint overwrites itself online (equal event time, later write wins).
"""

from __future__ import annotations

from typing import Any, Iterable

from pyflink.datastream import ProcessFunction, RuntimeContext

from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig


class FeatureStoreSink(ProcessFunction):
    """Writes each incoming Row to ``group``; yields nothing. Counts rows in the ``features_written`` metric."""

    def __init__(self, group: str, config: FeatureStoreConfig) -> None:
        self.group = group
        self.config = config
        self.client: FeatureStoreClient | None = None
        self.written = None

    def open(self, runtime_context: RuntimeContext) -> None:
        self.client = FeatureStoreClient(self.config)
        self.written = runtime_context.get_metrics_group().counter("features_written")

    def process_element(self, value: Any, ctx: ProcessFunction.Context) -> Iterable[Any]:
        assert self.client is not None
        self.client.put_record(self.group, value.as_dict())
        self.written.inc()
        return []
