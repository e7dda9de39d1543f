"""The local feature store driven by unmodified boto3 clients over HTTP, as users' code would."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from connectors.featurestore.local.server import LocalFeatureStoreServer, read_server_info
from job.local.data_dir import DataDir
from tests.conftest import CHAINFEAT, boto3_kwargs
from tests.support.store_records import DEFINITIONS, GROUP, offline_rows, record


def create_group(control, name: str = GROUP, event_time_type: str = "Fractional") -> None:
    definitions = [dict(d) for d in DEFINITIONS]
    definitions[1]["FeatureType"] = event_time_type
    control.create_feature_group(
        FeatureGroupName=name,
        RecordIdentifierFeatureName="tx_minute",
        EventTimeFeatureName="event_time",
        FeatureDefinitions=definitions,
        OnlineStoreConfig={"EnableOnlineStore": True},
    )


def as_dict(api_record) -> dict[str, str]:
    return {item["FeatureName"]: item["ValueAsString"] for item in api_record}


def test_control_plane_describe_list_delete(control) -> None:
    create_group(control)
    described = control.describe_feature_group(FeatureGroupName=GROUP)
    assert described["RecordIdentifierFeatureName"] == "tx_minute"
    assert described["EventTimeFeatureName"] == "event_time"
    assert described["FeatureDefinitions"] == DEFINITIONS
    assert described["FeatureGroupStatus"] == "Created"
    names = [s["FeatureGroupName"] for s in control.list_feature_groups()["FeatureGroupSummaries"]]
    assert names == [GROUP]
    with pytest.raises(control.exceptions.ResourceInUse):
        create_group(control)
    control.delete_feature_group(FeatureGroupName=GROUP)
    with pytest.raises(control.exceptions.ResourceNotFound):
        control.describe_feature_group(FeatureGroupName=GROUP)


def test_create_rejects_event_time_missing_from_definitions(control) -> None:
    with pytest.raises(ClientError) as raised:
        control.create_feature_group(
            FeatureGroupName="broken",
            RecordIdentifierFeatureName="tx_minute",
            EventTimeFeatureName="nope",
            FeatureDefinitions=DEFINITIONS,
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"  # the control plane's code
    assert "nope" in str(raised.value)


def test_put_get_batch_get_delete(control, runtime) -> None:
    create_group(control)
    runtime.put_record(FeatureGroupName=GROUP, Record=record("2024-01-01 00:00:00", "60", "3", "1.5"))
    runtime.put_record(FeatureGroupName=GROUP, Record=record("2024-01-01 00:01:00", "120", "4", "2.0"))

    got = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="2024-01-01 00:00:00")
    assert as_dict(got["Record"]) == {"tx_minute": "2024-01-01 00:00:00", "event_time": "60.0", "count": "3",
                                      "avg_fee": "1.5"}
    only = runtime.get_record(
        FeatureGroupName=GROUP, RecordIdentifierValueAsString="2024-01-01 00:00:00", FeatureNames=["count"]
    )
    assert only["Record"] == [{"FeatureName": "count", "ValueAsString": "3"}]
    assert "Record" not in runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="missing")

    batch = runtime.batch_get_record(
        Identifiers=[
            {
                "FeatureGroupName": GROUP,
                "RecordIdentifiersValueAsString": ["2024-01-01 00:00:00", "2024-01-01 00:01:00", "missing"],
            }
        ]
    )
    assert sorted(r["RecordIdentifierValueAsString"] for r in batch["Records"]) == [
        "2024-01-01 00:00:00",
        "2024-01-01 00:01:00",
    ]
    assert batch["Errors"] == [] and batch["UnprocessedIdentifiers"] == []

    runtime.delete_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="2024-01-01 00:00:00", EventTime="61")
    assert "Record" not in runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="2024-01-01 00:00:00")
    # A newer write revives a soft-deleted record.
    runtime.put_record(FeatureGroupName=GROUP, Record=record("2024-01-01 00:00:00", "62", "9"))
    revived = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="2024-01-01 00:00:00")
    assert as_dict(revived["Record"])["count"] == "9"


def test_delete_older_than_stored_keeps_online_but_marks_offline(control, runtime, server, data_dir) -> None:
    create_group(control)
    runtime.put_record(FeatureGroupName=GROUP, Record=record("m", "100", "5"))
    runtime.delete_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="m", EventTime="50")
    assert as_dict(runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="m")["Record"])["count"] == "5"
    with pytest.raises(runtime.exceptions.ValidationError):
        runtime.delete_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="m", EventTime="50",
                              DeletionMode="HardDelete")
    server.store.flush_offline()
    markers = [row for row in offline_rows(data_dir) if row["is_deleted"]]
    assert markers == [
        {**markers[0], "tx_minute": "m", "event_time": 50.0, "count": None, "avg_fee": None, "is_deleted": True}
    ]


def test_newest_event_time_wins_online_and_offline_keeps_all(control, runtime, server, data_dir) -> None:
    create_group(control)
    runtime.put_record(FeatureGroupName=GROUP, Record=record("k", "200", count="2"))
    runtime.put_record(FeatureGroupName=GROUP, Record=record("k", "100", count="1"))  # older, arrives later
    online = as_dict(runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="k")["Record"])
    assert online["count"] == "2" and online["event_time"] == "200.0"

    runtime.put_record(FeatureGroupName=GROUP, Record=record("k", "200", count="3"))  # equal: later write wins
    online = as_dict(runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="k")["Record"])
    assert online["count"] == "3"

    server.store.flush_offline()
    assert sorted((row["event_time"], row["count"]) for row in offline_rows(data_dir)) == [
        (100.0, 1),
        (200.0, 2),
        (200.0, 3),
    ]


def test_target_stores_online_only_skips_offline(control, runtime, server, data_dir) -> None:
    create_group(control)
    runtime.put_record(FeatureGroupName=GROUP, Record=record("k", "1"), TargetStores=["OnlineStore"])
    server.store.flush_offline()
    assert offline_rows(data_dir) == []
    assert "Record" in runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="k")


@pytest.mark.parametrize(
    ("bad_record", "field"),
    [
        ([{"FeatureName": "event_time", "ValueAsString": "1"}], "tx_minute"),
        ([{"FeatureName": "tx_minute", "ValueAsString": "m"}], "event_time"),
        (record("m", "1") + [{"FeatureName": "colour", "ValueAsString": "red"}], "colour"),
        (record("m", "1", count="1.5"), "count"),
        (record("m", "1", count="many"), "count"),
        (record("m", "1", avg_fee="cheap"), "avg_fee"),
        (record("m", "yesterday"), "event_time"),
        (record("m", "-5"), "event_time"),
    ],
    ids=["no-identifier", "no-event-time", "unknown-feature", "integral-fraction", "integral-text",
         "fractional-text", "event-time-text", "event-time-negative"],
)
def test_validation_errors_name_the_field(control, runtime, bad_record, field) -> None:
    create_group(control)
    with pytest.raises(runtime.exceptions.ValidationError) as raised:
        runtime.put_record(FeatureGroupName=GROUP, Record=bad_record)
    assert f"'{field}'" in raised.value.response["Error"]["Message"]


@pytest.mark.parametrize("event_time", ["2024-01-01 00:00:00", "2024-01-01T00:00:00", "2024-13-01T00:00:00Z"])
def test_iso_event_time_format_is_checked(control, runtime, event_time) -> None:
    create_group(control, event_time_type="String")
    runtime.put_record(FeatureGroupName=GROUP, Record=record("ok1", "2024-01-01T00:00:00Z"))
    runtime.put_record(FeatureGroupName=GROUP, Record=record("ok2", "2024-01-01T00:00:00.123Z"))
    with pytest.raises(runtime.exceptions.ValidationError) as raised:
        runtime.put_record(FeatureGroupName=GROUP, Record=record("bad", event_time))
    assert "'event_time'" in str(raised.value)


def test_unknown_group_is_resource_not_found(runtime) -> None:
    with pytest.raises(runtime.exceptions.ResourceNotFound):
        runtime.get_record(FeatureGroupName="nope", RecordIdentifierValueAsString="x")
    # PutRecord's model has no ResourceNotFound: the service answers a ValidationError saying so.
    with pytest.raises(runtime.exceptions.ValidationError, match="Resource Not Found.*FeatureGroup with name nope"):
        runtime.put_record(FeatureGroupName="nope", Record=record("m", "1"))


def test_batch_write_reports_bad_entries_and_writes_good_ones(control, runtime) -> None:
    create_group(control)
    response = runtime.batch_write_record(
        Entries=[
            {"FeatureGroupName": GROUP, "Record": record("a", "1")},
            {"FeatureGroupName": GROUP, "Record": record("b", "1", count="x")},
            {"FeatureGroupName": "nope", "Record": record("c", "1")},
        ]
    )
    assert [(e["ErrorCode"], as_dict(e["Entry"]["Record"])["tx_minute"]) for e in response["Errors"]] == [
        ("ValidationError", "b"),
        ("ResourceNotFound", "c"),
    ]
    assert "Record" in runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="a")
    assert "Record" not in runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="b")


def test_a_batch_is_written_in_order_and_a_bad_entry_leaves_the_others(control, runtime, server, data_dir) -> None:
    """A batch commits together (one transaction), yet as PutRecords one after the other would: of two entries for
    one record at one event time the later wins online, an older one does not replace a newer, every valid entry
    lands offline, and a bad entry between them changes nothing of theirs."""
    create_group(control)
    response = runtime.batch_write_record(Entries=[
        {"FeatureGroupName": GROUP, "Record": record("a", "5", count="1")},
        {"FeatureGroupName": GROUP, "Record": record("a", "5", count="2")},
        {"FeatureGroupName": GROUP, "Record": record("b", "1", count="bad")},
        {"FeatureGroupName": GROUP, "Record": record("a", "4", count="3")},
    ])
    assert [e["ErrorCode"] for e in response["Errors"]] == ["ValidationError"]
    online = as_dict(runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="a")["Record"])
    assert (online["count"], online["event_time"]) == ("2", "5.0")
    server.flush_offline()
    assert sorted((row["tx_minute"], row["count"]) for row in offline_rows(data_dir)) == [("a", 1), ("a", 2), ("a", 3)]


def test_offline_parquet_partitions_by_event_time_with_extra_columns(control, runtime, server, data_dir) -> None:
    create_group(control)
    before = datetime.utcnow().replace(microsecond=0)
    # 2024-03-05 13:59:30 and 14:00:30 UTC: two hour partitions.
    runtime.put_record(FeatureGroupName=GROUP, Record=record("2024-03-05 13:59:00", "1709647170", count="7"))
    runtime.put_record(FeatureGroupName=GROUP, Record=record("2024-03-05 14:00:00", "1709647230", count="8"))
    server.store.flush_offline()
    root = DataDir(data_dir).featurestore / "offline" / GROUP
    partitions = sorted(str(p.parent.relative_to(root)) for p in root.rglob("*.parquet"))
    assert partitions == ["year=2024/month=03/day=05/hour=13", "year=2024/month=03/day=05/hour=14"]
    table = pq.read_table(next(root.rglob("hour=13/*.parquet")))
    assert table.schema.names == ["tx_minute", "event_time", "count", "avg_fee", "write_time",
                                  "api_invocation_time", "is_deleted"]
    (row,) = table.to_pylist()
    assert row["count"] == 7 and row["is_deleted"] is False
    assert before <= row["api_invocation_time"] <= row["write_time"]
    assert not list(root.rglob(".*.tmp"))


def test_restart_after_stop_keeps_everything(data_dir) -> None:
    with LocalFeatureStoreServer(DataDir(data_dir).featurestore, port=0, flush_interval_s=3600).start() as first:
        control = boto3.client("sagemaker", **boto3_kwargs(first.url))
        runtime = boto3.client("sagemaker-featurestore-runtime", **boto3_kwargs(first.url))
        create_group(control)
        for minute in range(5):
            runtime.put_record(FeatureGroupName=GROUP, Record=record(f"m{minute}", str(60 * minute), str(minute)))
        assert first.store.pending_offline_rows() == 5  # still buffered: the flush interval is an hour
    with LocalFeatureStoreServer(DataDir(data_dir).featurestore, port=0).start() as second:
        runtime = boto3.client("sagemaker-featurestore-runtime", **boto3_kwargs(second.url))
        control = boto3.client("sagemaker", **boto3_kwargs(second.url))
        assert control.describe_feature_group(FeatureGroupName=GROUP)["FeatureGroupName"] == GROUP
        got = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="m3")
        assert as_dict(got["Record"])["count"] == "3"
    assert sorted(row["count"] for row in offline_rows(data_dir)) == [0, 1, 2, 3, 4]


def test_one_server_per_data_dir(server, data_dir) -> None:
    from connectors.featurestore.local.server import FeatureStoreLocked

    with pytest.raises(FeatureStoreLocked, match=server.url):
        LocalFeatureStoreServer(DataDir(data_dir).featurestore, port=0)


def test_interrupted_flush_is_redone_without_duplicates(control, runtime, server, data_dir) -> None:
    """A crash after the Parquet file was written but before the rows left SQLite must not duplicate them."""
    create_group(control)
    server.stop()  # no background flusher from here on
    store_db = DataDir(data_dir).featurestore / "online.sqlite3"
    import sqlite3

    from connectors.featurestore.local.store import LocalFeatureStore

    store = LocalFeatureStore(DataDir(data_dir).featurestore)
    for minute in range(3):
        store.put_record(GROUP, record(f"m{minute}", str(60 * minute)))
    # Simulate the crash: write the batch's files but leave its rows pending (the intent stays recorded).
    first, last = store._db.execute("SELECT min(seq), max(seq) FROM pending_offline").fetchone()
    store._db.execute("INSERT INTO flush_in_progress VALUES (?, ?, ?)", (first, last, time.time()))
    store._write_parquet(first, last, time.time(), *store._batch_rows(first, last))
    store._db.close()
    assert sqlite3.connect(store_db).execute("SELECT count(*) FROM pending_offline").fetchone()[0] == 3

    LocalFeatureStore(DataDir(data_dir).featurestore).close()  # opening + closing flushes what was pending
    assert sorted(row["tx_minute"] for row in offline_rows(data_dir)) == ["m0", "m1", "m2"]


@pytest.mark.slow
def test_sigterm_flushes_buffered_offline_rows(data_dir, cli_env) -> None:
    process = subprocess.Popen(
        [*CHAINFEAT, "featurestore", "serve", "--port", "0", "--flush-interval", "3600"],
        env=cli_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = _wait_for_server(data_dir, process)
        control = boto3.client("sagemaker", **boto3_kwargs(info["url"]))
        runtime = boto3.client("sagemaker-featurestore-runtime", **boto3_kwargs(info["url"]))
        create_group(control)
        for minute in range(20):
            runtime.put_record(FeatureGroupName=GROUP, Record=record(f"m{minute:02d}", str(60 * minute)))
        assert not list((DataDir(data_dir).featurestore / "offline").rglob("*.parquet"))  # all still buffered
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    assert sorted(row["tx_minute"] for row in offline_rows(data_dir)) == [f"m{m:02d}" for m in range(20)]
    assert read_server_info(DataDir(data_dir).featurestore) is None


def _wait_for_server(data_dir: Path, process: subprocess.Popen, timeout_s: float = 30) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = read_server_info(DataDir(data_dir).featurestore)
        if info:
            return info
        if process.poll() is not None:
            raise AssertionError(f"server exited early: {process.stderr.read()}")
        time.sleep(0.1)
    raise AssertionError("server did not start")


def test_admin_health_and_fault_state(server) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{server.url}/_chainfeat/health") as response:
        assert json.load(response)["status"] == "ok"
