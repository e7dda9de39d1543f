"""The Flink operator that writes feature rows to the feature store (one row per window, not per tx).

A vectorized (pandas) Python function: Flink hands it the feature rows that arrived in a bundle, column by
column, and it writes them with BatchWriteRecord (25 records per call, the API's limit) through the same
FeatureStoreClient as the CLI and the notebook, then returns 1 per row. It returns only once the records
are written, and Flink finishes a bundle before a checkpoint completes: a window is written at least once.
Being a function inside the job's one statement set (not a DataStream tail) keeps the whole job one plan:
the source and the dedup state are shared by the feature windows and the side outputs.

A window re-emitted after a restore from a checkpoint is written once: the writer skips rows the online
store already holds with the same values (one BatchGetRecord per 100 rows), so the offline store gets no
second copy (see FeatureStoreClient.put_new_records for the one case it cannot see). A group the store did not
have when the job was built (``new_group``) has no row written before, so its writer skips that read while its
task runs its first attempt (a task restarted by Flink may re-emit what it wrote, and reads first again).

Only complete windows are written (udfs/coverage.py): given the run's coverage and the view's window shape, the
writer skips a row whose window starts before the first poll or ends after the last poll's watermark, and counts it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pyflink.table import DataTypes
from pyflink.table.udf import FunctionContext, ScalarFunction, udf

from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig
from connectors.featurestore.model import to_api_value
from udfs import metric_names
from udfs.coverage import Coverage, WindowShape
from udfs.metrics import cloudwatch_metric_group


def value_texts(column: pd.Series) -> list[str | list[str | None] | None]:
    """A column's values as the API writes them: what to_api_value makes of plain(value) (a string; for an ARRAY
    column a list of them), None for a missing value. A column of numbers is converted in one pass."""
    numpy_kind = column.dtype.kind if isinstance(column.dtype, np.dtype) else None  # not pandas' nullable types
    if numpy_kind == "i":
        return list(map(str, column.tolist()))
    if numpy_kind == "f":
        return [None if value != value else repr(value) for value in column.tolist()]  # NaN is missing
    texts: list[str | list[str | None] | None] = []
    for value in map(plain, column):
        entry = None if value is None else to_api_value("", value)
        texts.append(None if entry is None else entry.get("ValueAsString", entry.get("ValueAsStringList")))
    return texts


def api_records(names: Sequence[str], columns: Sequence[pd.Series]) -> list[list[dict[str, Any]]]:
    """The rows of ``columns`` as Feature Store Records: to_api_record of each row of plain values, column by column."""
    texts = [value_texts(column) for column in columns]
    return [[{"FeatureName": name, "ValueAsStringList" if type(text) is list else "ValueAsString": text}
             for name, text in zip(names, row) if text is not None]
            for row in zip(*texts)]


def plain(value: Any) -> Any:
    """A value from a pandas column as the Python value the client writes (numpy scalars unwrapped, an ARRAY
    column's value as a list of them, a missing value as None: Feature Store has no null)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(element) for element in value]
    return value.item() if hasattr(value, "item") else value


class FeatureStoreWriter(ScalarFunction):
    """``write(*columns)`` puts the rows into ``group``; returns 1 per row.

    Metrics (group ``kinesisanalytics.chainfeat``, so Managed Flink sends them to CloudWatch):
    ``features_written``, ``put_retries``, ``put_latency_ms`` (last BatchWriteRecord, retries included) and
    ``freshness_s`` = now − the newest event time written (seconds; -1 before the first write),
    ``partial_windows_skipped`` (rows of windows the data covers only in part: not written).
    """

    def __init__(self, group: str, columns: list[str], config: FeatureStoreConfig, event_time_column: str,
                 new_group: bool = False, window: WindowShape | None = None, coverage: Coverage = Coverage()) -> None:
        self.group = group
        self.window = window
        self.coverage = coverage
        self.new_group = new_group
        self.read_first = True
        self.columns = columns
        self.config = config
        self.event_time_column = event_time_column
        self.client: FeatureStoreClient | None = None
        self.written: Any = None
        self.skipped: Any = None
        self.last_put_ms = 0
        self.newest_event_time: float | None = None

    def open(self, function_context: FunctionContext) -> None:
        self.client = FeatureStoreClient(self.config)
        # PyFlink before 2.3 cannot say which attempt this is: read first.
        attempt = getattr(function_context, "get_attempt_number", lambda: 1)()
        self.read_first = not (self.new_group and attempt == 0)
        metrics = cloudwatch_metric_group(function_context)
        self.written = metrics.counter(metric_names.FEATURES_WRITTEN)
        self.skipped = metrics.counter(metric_names.PARTIAL_WINDOWS_SKIPPED)
        metrics.gauge(metric_names.PUT_RETRIES, lambda: self.client.retries if self.client else 0)
        metrics.gauge(metric_names.PUT_LATENCY_MS, lambda: self.last_put_ms)
        metrics.gauge(metric_names.FRESHNESS_S, self.freshness_s)

    def freshness_s(self) -> int:
        return -1 if self.newest_event_time is None else int(time.time() - self.newest_event_time)

    def eval(self, *columns: pd.Series) -> pd.Series:
        assert self.client is not None
        complete = pd.Series(True, index=columns[0].index)
        if self.coverage.bounded and self.window is not None:
            complete &= self.coverage.complete(self.window, columns[self.columns.index(self.event_time_column)])
            self.skipped.inc(int((~complete).sum()))
            columns = tuple(column[complete] for column in columns)
        records = api_records(self.columns, columns)
        started = time.perf_counter()
        if self.read_first:  # a window re-emitted after a restore: not twice
            written = self.client.write_new_records(self.group, records)
        else:
            written = self.client.write_records(self.group, records)
        self.last_put_ms = round((time.perf_counter() - started) * 1000)
        self.written.inc(written)
        event_times = columns[self.columns.index(self.event_time_column)]
        if len(event_times):
            newest = float(max(map(plain, event_times), key=float))
            self.newest_event_time = max(newest, self.newest_event_time or newest)
        return complete.astype("int64")

    def is_deterministic(self) -> bool:
        return False  # a side effect: the planner must neither fold nor repeat the call


def feature_store_writer(group: str, columns: list[str], config: FeatureStoreConfig, event_time_column: str,
                         new_group: bool = False, window: WindowShape | None = None, coverage: Coverage = Coverage()):
    return udf(FeatureStoreWriter(group, columns, config, event_time_column, new_group, window, coverage),
               result_type=DataTypes.BIGINT(), func_type="pandas")
