"""Offline-store compaction on real Parquet: written by the local store, on local disk and on moto's S3."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.featurestore import compaction
from connectors.featurestore.compaction import COMPACTED_FROM_KEY, compact
from connectors.featurestore.local.offline import run_query
from connectors.featurestore.local.server import LocalFeatureStoreServer
from connectors.featurestore.local.store import LocalFeatureStore
from job.local.data_dir import DataDir
from tests.support import chainfeat
from tests.support.store_records import DEFINITIONS, GROUP, record

T0 = datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
NOW = datetime(2024, 5, 1, 15, tzinfo=timezone.utc)  # hours 10-12 ended >= 2 h before; hour 13 is young
# One flush per batch (minutes after T0): hour 10 gets 4 files, hour 11 gets 3, hour 12 one, hour 13 two.
BATCHES = [[0, 1, 70, 130], [2, 3, 71, 200], [4, 72, 201], [5]]
PARTITION_10 = "year=2024/month=05/day=01/hour=10"


def fill_store(data_dir: Path, batches: list[list[int]] = BATCHES) -> Path:
    """Writes records through the real local store, one flush per batch; returns the group's offline dir."""
    store = LocalFeatureStore(DataDir(data_dir).featurestore)
    store.create_feature_group({
        "FeatureGroupName": GROUP, "RecordIdentifierFeatureName": "tx_minute",
        "EventTimeFeatureName": "event_time", "FeatureDefinitions": DEFINITIONS,
    })
    for batch in batches:
        for minute in batch:
            moment = T0 + timedelta(minutes=minute)
            store.put_record(GROUP, record(f"{moment:%Y-%m-%d %H:%M:%S}", str(moment.timestamp()), str(minute)))
        store.flush_offline()
    store.close()
    return DataDir(data_dir).featurestore / "offline" / GROUP


def rows_by_partition(group_dir: Path) -> dict[str, list[dict]]:
    """{partition: rows of its files, in file-name order}."""
    partitions: dict[str, list[dict]] = {}
    for path in sorted(group_dir.rglob("*.parquet")):
        partitions.setdefault(str(path.parent.relative_to(group_dir)), []).extend(pq.read_table(path).to_pylist())
    return partitions


def listing(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def by_key(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda row: (row["tx_minute"], row["write_time"]))


def test_compacts_old_partitions_keeping_every_row_in_order(data_dir) -> None:
    group_dir = fill_store(data_dir)
    before = rows_by_partition(group_dir)
    files_before = {p: sorted(f.name for f in (group_dir / p).glob("*.parquet")) for p in before}
    sql = f"SELECT * FROM {GROUP} ORDER BY tx_minute, write_time"
    query_before = run_query(DataDir(data_dir).featurestore, sql)

    report = compact(group_dir, now=NOW)

    assert (report.partitions_seen, report.partitions_compacted, report.skipped_young) == (4, 2, 1)
    assert (report.files_in, report.files_out, report.rows, report.redone, report.failed) == (7, 2, 9, 0, [])
    assert 0 < report.bytes_after < report.bytes_before
    after = rows_by_partition(group_dir)
    assert after == before  # same rows, same order within each partition
    for partition in ("year=2024/month=05/day=01/hour=10", "year=2024/month=05/day=01/hour=11"):
        [compacted] = list((group_dir / partition).iterdir())
        assert compacted.name == compaction.compacted_name(files_before[partition])
        sources = json.loads(pq.ParquetFile(compacted).metadata.metadata[COMPACTED_FROM_KEY])
        assert [source["file"] for source in sources] == files_before[partition]
    for untouched in ("year=2024/month=05/day=01/hour=12", "year=2024/month=05/day=01/hour=13"):
        assert sorted(f.name for f in (group_dir / untouched).iterdir()) == files_before[untouched]
    assert by_key([r for rows in after.values() for r in rows]) == by_key([r for rows in before.values() for r in rows])
    assert run_query(DataDir(data_dir).featurestore, sql) == query_before


def test_second_run_changes_nothing(data_dir) -> None:
    group_dir = fill_store(data_dir)
    compact(group_dir, now=NOW)
    files = listing(group_dir)

    report = compact(group_dir, now=NOW)

    assert (report.partitions_compacted, report.redone, report.files_in, report.failed) == (0, 0, 0, [])
    assert listing(group_dir) == files


def crash_after_first_delete(monkeypatch) -> None:
    def delete_one_then_crash(fs, directory, names):
        fs.delete_file(f"{directory}/{names[0]}")
        raise OSError("simulated crash between the deletes")

    monkeypatch.setattr(compaction, "_delete_inputs", delete_one_then_crash)


def test_crash_between_write_and_deletes_is_finished_by_the_next_run(data_dir, monkeypatch) -> None:
    group_dir = fill_store(data_dir, [[0, 1], [2], [3, 4]])
    partition = group_dir / PARTITION_10
    rows = rows_by_partition(group_dir)[PARTITION_10]
    inputs = sorted(path.name for path in partition.iterdir())
    crash_after_first_delete(monkeypatch)

    crashed = compact(group_dir, now=NOW)

    assert crashed.failed and "simulated crash" in crashed.failed[0]
    assert len(list(partition.glob("compacted-*.parquet"))) == 1 and len(list(partition.glob("part-*"))) == 2
    monkeypatch.undo()

    report = compact(group_dir, now=NOW)

    assert (report.redone, report.partitions_compacted, report.failed) == (1, 0, [])
    assert [path.name for path in partition.iterdir()] == [compaction.compacted_name(inputs)]
    assert rows_by_partition(group_dir)[PARTITION_10] == rows  # each row exactly once


def test_rerun_refuses_to_delete_inputs_the_compacted_file_does_not_match(data_dir, monkeypatch) -> None:
    group_dir = fill_store(data_dir, [[0], [1], [2]])
    partition = group_dir / PARTITION_10
    crash_after_first_delete(monkeypatch)
    compact(group_dir, now=NOW)
    monkeypatch.undo()
    leftover = sorted(partition.glob("part-*"))[0]
    table = pq.read_table(leftover)
    pq.write_table(pa.concat_tables([table, table]), leftover)  # an input that is not what was compacted
    files = listing(group_dir)

    report = compact(group_dir, now=NOW)

    assert report.redone == 0 and len(report.failed) == 1 and "check it by hand" in report.failed[0]
    assert listing(group_dir) == files


def test_added_feature_compacts_with_nulls_and_type_conflicts_are_left_alone(tmp_path) -> None:
    evolved, conflicting = tmp_path / PARTITION_10, tmp_path / "year=2024/month=05/day=01/hour=11"
    for directory in (evolved, conflicting):
        directory.mkdir(parents=True)
    pq.write_table(pa.table({"tx_minute": ["a1", "a2"], "count": [1, 2]}), evolved / "a.parquet")
    pq.write_table(pa.table({"tx_minute": ["b1"], "count": [3], "fee": [0.5]}), evolved / "b.parquet")
    pq.write_table(pa.table({"tx_minute": ["c1"], "count": [1]}), conflicting / "a.parquet")
    pq.write_table(pa.table({"tx_minute": ["d1"], "count": ["one"]}), conflicting / "b.parquet")

    report = compact(tmp_path, now=NOW)

    assert (report.partitions_compacted, report.rows) == (1, 3)
    [compacted] = list(evolved.iterdir())
    assert pq.read_table(compacted).to_pylist() == [
        {"tx_minute": "a1", "count": 1, "fee": None},
        {"tx_minute": "a2", "count": 2, "fee": None},
        {"tx_minute": "b1", "count": 3, "fee": 0.5},
    ]
    assert len(report.failed) == 1 and "hour=11" in report.failed[0] and "incompatible schemas" in report.failed[0]
    assert sorted(path.name for path in conflicting.iterdir()) == ["a.parquet", "b.parquet"]


# ---- S3 (moto), through the Glue entry point ----------------------------------------------------------

S3_DATA = "features/123456789012/sagemaker/us-east-1/offline-store/minute_features-1714521600/data"


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def read_object(s3, bucket: str, key: str) -> list[dict]:
    return pq.read_table(pa.BufferReader(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).to_pylist()


def test_glue_job_compacts_sagemaker_layout_on_s3(moto_url, monkeypatch, capsys) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url)
    bucket = f"offline-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    young = datetime.now(timezone.utc)
    files = {  # SageMaker's names: <latest event time>_<16 random characters>.parquet
        f"{S3_DATA}/{PARTITION_10}": ["20240501T100500Z_AAAAAAAAAAAAAAAA", "20240501T101000Z_BBBBBBBBBBBBBBBB",
                                      "20240501T101500Z_CCCCCCCCCCCCCCCC"],
        f"{S3_DATA}/year=2024/month=05/day=01/hour=11": ["20240501T110500Z_DDDDDDDDDDDDDDDD",
                                                         "20240501T111000Z_EEEEEEEEEEEEEEEE"],
        f"{S3_DATA}/{young:year=%Y/month=%m/day=%d/hour=%H}": ["young_1", "young_2"],
    }
    expected: dict[str, list[dict]] = {}
    for directory, names in files.items():
        for name in names:
            rows = [{"tx_minute": f"{directory[-2:]}:{name[:15]}:{i}", "count": i} for i in range(3)]
            s3.put_object(Bucket=bucket, Key=f"{directory}/{name}.parquet", Body=parquet_bytes(pa.Table.from_pylist(rows)))
            expected.setdefault(directory, []).extend(rows)
    s3.put_object(Bucket=bucket, Key=f"{S3_DATA}/{PARTITION_10}/README.txt", Body=b"not Parquet: left alone")

    def keys() -> list[str]:
        return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"])

    def run(*extra: str) -> dict:
        arguments = ["--offline_store_uri", f"s3://{bucket}/features", "--s3_endpoint_url", moto_url,
                     "--scriptLocation", "s3://scripts/compaction.py", "--job-bookmark-option", "job-bookmark-disable"]
        assert compaction.main([*arguments, *extra]) == 0
        return json.loads(capsys.readouterr().out)

    original = keys()
    assert run("--dry_run", "true")["partitions_compacted"] == 2
    assert keys() == original

    summary = run()

    assert (summary["partitions_seen"], summary["partitions_compacted"], summary["skipped_young"]) == (3, 2, 1)
    assert (summary["files_in"], summary["files_out"], summary["rows"], summary["failed"]) == (5, 2, 15, [])
    after = [key for key in keys() if not key.endswith("/")]  # pyarrow's zero-byte "directory" markers
    assert not [key for key in after if key.endswith(".tmp")]
    old_hours = {f"{S3_DATA}/{PARTITION_10}", f"{S3_DATA}/year=2024/month=05/day=01/hour=11"}
    for directory, names in files.items():
        present = [key.rsplit("/", 1)[1] for key in after if key.rsplit("/", 1)[0] == directory]
        if directory in old_hours:  # (the young partition is this hour: it can be hour=10 or 11 too)
            compacted = compaction.compacted_name([f"{name}.parquet" for name in names])
            readme = ["README.txt"] if directory == f"{S3_DATA}/{PARTITION_10}" else []
            assert sorted(present) == sorted([compacted] + readme)
            assert read_object(s3, bucket, f"{directory}/{compacted}") == expected[directory]
        else:
            assert sorted(present) == [f"{name}.parquet" for name in names]
    assert run()["partitions_compacted"] == 0


def test_glue_job_reports_a_missing_option_and_a_bad_uri(capsys) -> None:
    with pytest.raises(SystemExit) as usage:
        compaction.main(["--min_age_hours", "1"])
    assert usage.value.code == 2 and "--offline_store_uri" in capsys.readouterr().err
    assert compaction.main(["--offline_store_uri", "nosuchscheme://bucket/x"]) == 1
    assert "compaction of nosuchscheme://bucket/x failed" in capsys.readouterr().err


# ---- the CLI ------------------------------------------------------------------------------------------


def test_cli_compacts_and_refuses_while_the_server_holds_the_data_dir(data_dir, cli_env) -> None:
    fill_store(data_dir)

    result = chainfeat(cli_env, "compact", "--format", "json")

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["partitions_seen"], summary["partitions_compacted"], summary["files_out"]) == (4, 3, 3)
    assert summary["rows"] == 11 and summary["failed"] == [] and summary["dry_run"] is False

    with LocalFeatureStoreServer(DataDir(data_dir).featurestore, port=0).start() as server:
        refused = chainfeat(cli_env, "compact")
    assert refused.returncode == 1
    assert server.url in refused.stderr and "stop it first" in refused.stderr

    missing = chainfeat(cli_env, "compact", "--group", "no_such_group")
    assert missing.returncode == 3 and f"groups with offline data: {GROUP}" in missing.stderr
