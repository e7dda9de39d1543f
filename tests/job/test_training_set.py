"""`chainfeat training-set`: labels joined point in time to two feature groups of a real local feature store,
written through its boto3 API, checked against an expectation computed here by hand; and `--print-sql`, the
same statement for Athena, parsed as Athena's dialect and run on DuckDB over tables named as Athena names them.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import sqlglot

from connectors.featurestore.local.offline import connect
from connectors.featurestore.local.server import LocalFeatureStoreServer
from job.local.data_dir import DataDir
from job.offline.training_set import LABELS_INPUT
from tests.conftest import boto3_kwargs
from tests.support import chainfeat

pytestmark = pytest.mark.slow  # the CLI as a user runs it, in subprocesses

ACTIVITY, PROFILE = "user_activity", "user_profile"
# Both groups have a feature named `clicks`: the training set must keep them apart.
GROUPS = {
    ACTIVITY: {"user_id": "String", "event_time": "Fractional", "clicks": "Integral", "score": "Fractional"},
    PROFILE: {"user_id": "String", "event_time": "Fractional", "clicks": "Integral", "country": "String"},
}
# Written in this order, each call one tick of the store's clock later (api_invocation_time).
ACTIVITY_WRITES = [
    ("put", "u1", 100, 1, 0.5),
    ("put", "u1", 200, 2, 1.5),
    ("put", "u1", 200, 3, 2.5),    # same event time, written later: wins over the one before
    ("put", "u2", 150, 10, 9.0),
    ("put", "u1", 300, 4, 4.5),
    ("put", "u1", 250, 7, 7.5),    # late correction: written after event time 300, for event time 250
    ("delete", "u2", 400),         # u2 did not exist from event time 400 ...
    ("put", "u2", 500, 20, 19.0),  # ... until 500
    ("put", "u1", 100, 11, 10.5),  # late correction of event time 100 itself: replaces clicks=1
]
PROFILE_WRITES = [("put", "u1", 150, 100, "CH"), ("put", "u2", 100, 200, "DE")]
# (user_id, label_time, label): the label is unique, so rows can be matched whatever their order.
LABELS = [
    ("u1", 50.0, 0),     # before any feature of u1: nulls in both groups
    ("u1", 100.0, 1),    # exactly at event time 100: included (the correction at 100); profile's 150 is later
    ("u1", 199.5, 2),    # 100 is the newest at or before; 200 is in the future
    ("u1", 200.0, 3),    # the tie at 200: the later write (clicks 3)
    ("u1", 260.0, 4),    # the late correction at 250 is the newest at or before 260
    ("u1", 1000.0, 5),   # 300 (written before the correction at 250, but the newer event time)
    ("u2", 160.0, 6),
    ("u2", 450.0, 7),    # the newest at or before 450 is the delete at 400: no activity features
    ("u2", 600.0, 8),    # re-created at 500
    ("u3", 1000.0, 9),   # an entity no group has
    ("u1", 200.0, 10),   # the same entity and time as label 3: its own row, the same features
]
A, P = f"{ACTIVITY}__", f"{PROFILE}__"
COLUMNS = ["user_id", "label_time", "label", f"{A}event_time", f"{A}clicks", f"{A}score",
           f"{P}event_time", f"{P}clicks", f"{P}country"]
NO_ACTIVITY, NO_PROFILE = (None, None, None), (None, None, None)
EXPECTED = {  # label -> (activity event_time, clicks, score), (profile event_time, clicks, country), by hand
    0: (NO_ACTIVITY, NO_PROFILE),
    1: ((100.0, 11, 10.5), NO_PROFILE),
    2: ((100.0, 11, 10.5), (150.0, 100, "CH")),
    3: ((200.0, 3, 2.5), (150.0, 100, "CH")),
    4: ((250.0, 7, 7.5), (150.0, 100, "CH")),
    5: ((300.0, 4, 4.5), (150.0, 100, "CH")),
    6: ((150.0, 10, 9.0), (100.0, 200, "DE")),
    7: (NO_ACTIVITY, (100.0, 200, "DE")),
    8: ((500.0, 20, 19.0), (100.0, 200, "DE")),
    9: (NO_ACTIVITY, NO_PROFILE),
    10: ((200.0, 3, 2.5), (150.0, 100, "CH")),
}


def expected_rows() -> list[dict]:
    rows = []
    for user, label_time, label in LABELS:
        activity, profile = EXPECTED[label]
        rows.append(dict(zip(COLUMNS, (user, label_time, label, *activity, *profile))))
    return rows


def by_label(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda row: row["label"])


@pytest.fixture
def store(server, data_dir) -> Path:
    """The two groups written through boto3, one clock tick per call; the server stopped (the CLI reads files)."""
    ticks = itertools.count(1_714_521_600)
    server.store.clock = lambda: float(next(ticks))
    control = boto3.client("sagemaker", **boto3_kwargs(server.url))
    runtime = boto3.client("sagemaker-featurestore-runtime", **boto3_kwargs(server.url))
    for group, features in GROUPS.items():
        control.create_feature_group(
            FeatureGroupName=group, RecordIdentifierFeatureName="user_id", EventTimeFeatureName="event_time",
            FeatureDefinitions=[{"FeatureName": name, "FeatureType": kind} for name, kind in features.items()],
            OnlineStoreConfig={"EnableOnlineStore": True},
            OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://bucket/offline"}})
    for group, writes in ((ACTIVITY, ACTIVITY_WRITES), (PROFILE, PROFILE_WRITES)):
        names = list(GROUPS[group])
        for kind, user, event_time, *values in writes:
            if kind == "delete":
                runtime.delete_record(FeatureGroupName=group, RecordIdentifierValueAsString=user,
                                      EventTime=str(event_time))
                continue
            record = dict(zip(names, (user, event_time, *values)))
            runtime.put_record(FeatureGroupName=group, Record=[
                {"FeatureName": name, "ValueAsString": str(value)} for name, value in record.items()])
    server.stop()  # flushes the offline store; the CLI reads its files without a server
    return DataDir(data_dir).featurestore


def write_labels_csv(path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "label_time", "label"])
        writer.writerows(LABELS)
    return path


def write_labels_parquet(path: Path) -> Path:
    users, times, labels = zip(*LABELS)
    pq.write_table(pa.table({"user_id": list(users), "label_time": list(times), "label": list(labels)}), path)
    return path


def read_csv_output(path: Path) -> list[dict]:
    table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(
        column_types={f"{A}event_time": pa.float64(), f"{P}event_time": pa.float64(), "label_time": pa.float64(),
                      f"{A}score": pa.float64(), f"{A}clicks": pa.int64(), f"{P}clicks": pa.int64(),
                      f"{P}country": pa.string()}, strings_can_be_null=True))  # a null is an empty cell
    return table.to_pylist()


def test_csv_labels_to_parquet_and_parquet_labels_to_csv(store, tmp_path, cli_env) -> None:
    labels_csv = write_labels_csv(tmp_path / "labels.csv")
    output = tmp_path / "train.parquet"
    result = chainfeat(cli_env, "training-set", "--labels", str(labels_csv), "--group", ACTIVITY, "--group", PROFILE,
                       "--entity-column", "user_id", "--output", str(output), "--format", "json")
    assert result.returncode == 0, result.stderr
    table = pq.read_table(output)
    assert table.column_names == COLUMNS
    rows = table.to_pylist()
    assert [row["label_time"] for row in rows] == sorted(row["label_time"] for row in rows)  # ordered by label time
    assert by_label(rows) == expected_rows()
    summary = json.loads(result.stdout)
    assert summary["rows"] == len(LABELS)
    assert summary["labels_with_features"] == {ACTIVITY: 8, PROFILE: 8}  # labels 0, 7, 9 and 0, 1, 9 have none
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temp file left

    # Parquet in, CSV out; the entity column defaults to each group's record identifier (user_id for both).
    labels_parquet = write_labels_parquet(tmp_path / "labels.parquet")
    output_csv = tmp_path / "train.csv"
    result = chainfeat(cli_env, "training-set", "--labels", str(labels_parquet), "--group", ACTIVITY,
                       "--group", PROFILE, "--output", str(output_csv))
    assert result.returncode == 0, result.stderr
    assert by_label(read_csv_output(output_csv)) == expected_rows()


def test_print_sql_is_the_athena_statement(store, tmp_path, cli_env) -> None:
    result = chainfeat(cli_env, "training-set", "--print-sql", "--group", ACTIVITY, "--group", PROFILE,
                       "--labels-table", "ml.churn_labels")
    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip()

    # The Glue tables DescribeFeatureGroup names (the local server answers as SageMaker does).
    with LocalFeatureStoreServer(store, port=0).start() as server:
        control = boto3.client("sagemaker", **boto3_kwargs(server.url))
        for group in GROUPS:
            catalog = control.describe_feature_group(FeatureGroupName=group)["OfflineStoreConfig"]["DataCatalogConfig"]
            assert f'"{catalog["Catalog"]}"."{catalog["Database"]}"."{catalog["TableName"]}"' in printed
        # --endpoint-url: the same statement from DescribeFeatureGroup over HTTP
        described = chainfeat(cli_env, "training-set", "--print-sql", "--group", ACTIVITY, "--group", PROFILE,
                              "--labels-table", "ml.churn_labels", "--endpoint-url", server.url)
    assert described.returncode == 0, described.stderr
    assert described.stdout.strip() == printed
    assert '"ml"."churn_labels"' in printed
    assert '"user_activity"' not in printed.replace(f'"{ACTIVITY}__', "")  # only Glue names, no local view names

    # Athena's dialect parses it as one statement; none of DuckDB's own syntax is in it.
    parsed = sqlglot.parse(printed, read="athena")
    assert len(parsed) == 1 and isinstance(parsed[0], sqlglot.exp.Query)
    code = re.sub(r'"(?:[^"]|"")*"', '""', re.sub(r"'(?:[^']|'')*'", "''", printed))  # outside quotes only
    for duckdb_only in (r"\bASOF\b", r"\bQUALIFY\b", "::", r"\bEXCLUDE\b", r"\bREPLACE\s*\(", r"\bread_parquet\b",
                        r"\bread_csv\b", r"\bPOSITIONAL\b", r"\bSTRUCT_PACK\b", r"\bUSING\s+SAMPLE\b", ";"):
        assert not re.search(duckdb_only, code, re.IGNORECASE), duckdb_only

    # Unchanged, it runs on DuckDB over the offline store under Athena's names, the labels under theirs.
    connection = connect(store)
    users, times, labels = zip(*LABELS)
    connection.register(LABELS_INPUT, pa.table({"user_id": users, "label_time": times, "label": labels}))
    connection.execute('CREATE SCHEMA "ml"')
    connection.execute(f'CREATE VIEW "ml"."churn_labels" AS SELECT * FROM {LABELS_INPUT}')
    table = connection.sql(printed).to_arrow_table()
    assert table.column_names == COLUMNS
    assert by_label(table.to_pylist()) == expected_rows()


def test_clear_errors(store, tmp_path, cli_env) -> None:
    labels = write_labels_csv(tmp_path / "labels.csv")
    output = tmp_path / "train.parquet"

    result = chainfeat(cli_env, "training-set", "--labels", str(labels), "--group", ACTIVITY,
                       "--entity-column", "customer", "--output", str(output))
    assert result.returncode == 2
    assert "no entity column 'customer'" in result.stderr and "--entity-column" in result.stderr
    assert "user_id, label_time, label" in result.stderr  # what it has

    result = chainfeat(cli_env, "training-set", "--labels", str(labels), "--group", ACTIVITY,
                       "--time-column", "at", "--output", str(output))
    assert result.returncode == 2 and "no label time column 'at'" in result.stderr and "--time-column" in result.stderr

    result = chainfeat(cli_env, "training-set", "--labels", str(labels), "--group", "user_actvity",
                       "--output", str(output))
    assert result.returncode == 3
    assert "no feature group user_actvity" in result.stderr and f"{ACTIVITY}, {PROFILE}" in result.stderr

    result = chainfeat(cli_env, "training-set", "--labels", str(labels), "--group", ACTIVITY,
                       "--output", str(tmp_path / "train.xlsx"))
    assert result.returncode == 2 and ".parquet or .csv" in result.stderr
    assert not output.exists()
    assert len(result.stderr.strip().splitlines()) == 1  # one line, no traceback


def test_names_from_the_command_line_stay_identifiers(store) -> None:
    """Column and table names a user types are quoted, never SQL: a hostile one stays one identifier."""
    from connectors.featurestore.local.offline import group_descriptions
    from job.offline.training_set import resolve_groups, statement

    hostile = 'at" FROM x; DROP TABLE y; --'
    sql = statement(resolve_groups([ACTIVITY, PROFILE], group_descriptions(store)), 'ml.la"bels', "user_id", hostile)
    (parsed,) = sqlglot.parse(sql, read="athena")
    assert hostile in {column.name for column in parsed.find_all(sqlglot.exp.Column)}
    assert 'la"bels' in {table.name for table in parsed.find_all(sqlglot.exp.Table)}
    assert not list(parsed.find_all(sqlglot.exp.Drop))
    assert sql.count("ROW_NUMBER() OVER") == 2  # one step per group
