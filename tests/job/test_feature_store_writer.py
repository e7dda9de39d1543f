"""The job's feature-store writer (udfs/feature_store_writer.py) against a real local store, opened with PyFlink's own
FunctionContext as Flink opens it: a group the store did not have when the job was built is written without reading
first on the task's first attempt, and read first again once Flink restarts the task (or for any other group), so a
window re-emitted after a restart is not written a second time offline."""

from __future__ import annotations

import pandas as pd
from pyflink.table.udf import FunctionContext

from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig
from connectors.featurestore.model import FeatureGroupDefinition, FeatureType, to_api_record
from tests.support.store_records import offline_rows
from udfs.feature_store_writer import FeatureStoreWriter, api_records, plain

GROUP = "address_minute"
DEFINITION = FeatureGroupDefinition(GROUP, "address", "event_time", {
    "address": FeatureType.STRING, "event_time": FeatureType.FRACTIONAL, "received": FeatureType.INTEGRAL})
ROWS = {"address": ["a1", "a2", "a3"], "event_time": [60.0, 60.0, 120.0], "received": [5, 7, 11]}


class _Metrics:
    """Flink's metric group as the writer uses it (it registers a counter and gauges)."""

    def add_group(self, *_args):
        return self

    def counter(self, _name):
        return self

    def inc(self, _count=1):
        pass

    def gauge(self, _name, _value):
        pass


def opened_writer(url: str, new_group: bool, attempt: int) -> FeatureStoreWriter:
    writer = FeatureStoreWriter(GROUP, list(DEFINITION.features), FeatureStoreConfig(endpoint_url=url), "event_time",
                                new_group=new_group)
    writer.open(FunctionContext(_Metrics(), {}, attempt_number=attempt))
    return writer


def write(writer: FeatureStoreWriter) -> None:
    written = writer.eval(*(pd.Series(values) for values in ROWS.values()))
    assert list(written) == [1, 1, 1]


def test_a_new_group_skips_the_read_until_its_task_restarts(server, data_dir) -> None:
    FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url)).ensure_feature_group(DEFINITION)
    write(opened_writer(server.url, new_group=True, attempt=0))
    assert server.app.calls["BatchGetRecord"] == 0 and server.app.calls["BatchWriteRecord"] >= 1
    # Flink restarted the task: it re-emits the same windows, which the store already holds.
    write(opened_writer(server.url, new_group=True, attempt=1))
    assert server.app.calls["BatchGetRecord"] >= 1
    # A group the store had before the job was built: read first from the start.
    reads = server.app.calls["BatchGetRecord"]
    write(opened_writer(server.url, new_group=False, attempt=0))
    assert server.app.calls["BatchGetRecord"] > reads
    server.flush_offline()
    rows = sorted((row["address"], row["event_time"], row["received"]) for row in offline_rows(data_dir, GROUP))
    assert rows == sorted(zip(*ROWS.values()))  # each window once offline


def test_an_array_column_is_written_as_a_list_and_not_twice(server, data_dir) -> None:
    """PyFlink hands a pandas writer an ARRAY column as numpy arrays (a 1-element one too): each is a List value; a
    window re-emitted after a restore is recognised with its lists, so offline gets it once."""
    import numpy as np

    from connectors.featurestore.model import Collection, CollectionType

    listed = FeatureGroupDefinition("input_addresses", "minute", "event_time", {
        "minute": FeatureType.STRING, "event_time": FeatureType.FRACTIONAL, "addresses": FeatureType.STRING},
        collections={"addresses": Collection(CollectionType.LIST)})
    FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url)).ensure_feature_group(listed)
    columns = [pd.Series(["m1", "m2"]), pd.Series([60.0, 120.0]),
               pd.Series([np.array(["a", "b"], dtype=object), np.array(["c"], dtype=object)])]
    for attempt in (0, 1):  # the first run, then a restored task re-emitting the same windows
        writer = FeatureStoreWriter("input_addresses", list(listed.features), FeatureStoreConfig(endpoint_url=server.url),
                                    "event_time", new_group=True)
        writer.open(FunctionContext(_Metrics(), {}, attempt_number=attempt))
        assert list(writer.eval(*columns)) == [1, 1]
    server.flush_offline()
    assert sorted((row["minute"], row["addresses"]) for row in offline_rows(data_dir, "input_addresses")) == [
        ("m1", ["a", "b"]), ("m2", ["c"])]


def test_columns_become_the_records_each_row_would() -> None:
    """api_records converts the writer's columns column by column (bench/HISTORY.md): the Records must be those
    to_api_record makes of each row's plain values, for every kind of column Flink hands the writer (numbers, floats
    with a missing value, big integers, strings with a missing value, nullable integers, an ARRAY column)."""
    columns = {
        "count": pd.Series([0, -3, 2**62]),
        "ratio": pd.Series([0.1, float("nan"), 1e16]),
        "name": pd.Series(["a", None, "ü"]),
        "maybe": pd.Series([1, None, 3], dtype="Int64"),
        "addresses": pd.Series([["x", "y"], [], ["z"]]),
    }
    expected = [to_api_record({name: plain(values[row]) for name, values in columns.items()}) for row in range(3)]
    assert api_records(list(columns), list(columns.values())) == expected
