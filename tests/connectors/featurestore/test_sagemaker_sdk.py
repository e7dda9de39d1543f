"""The SageMaker Python SDK v2 (in a venv of its own: it does not co-install with apache-flink) drives the
real local feature store through the standard endpoint variables, as a user's notebook would; its
multi-worker ``ingest`` of 10,000 rows loses nothing, online or offline. SDK v3: test_sagemaker_sdk_v3.py."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone

import pytest

from connectors.featurestore.local.offline import run_query
from job.local.data_dir import DataDir
from tests.support.sagemaker_sdk import V2_SCRIPT, OutboundTrap, sdk_env
from tests.support.venvs import SAGEMAKER_SDK, cached_venv

pytestmark = pytest.mark.slow

ROWS, WORKERS, PROCESSES = 10_000, 4, 2


@pytest.fixture(scope="session")
def sdk_python() -> str:
    return str(cached_venv("sagemaker", SAGEMAKER_SDK))


def test_the_sdk_feature_group_api_works_and_ingest_loses_nothing(sdk_python, server, data_dir, tmp_path) -> None:
    trap = OutboundTrap()
    try:
        run = subprocess.run([sdk_python, "-I", str(V2_SCRIPT), str(ROWS), str(WORKERS), str(PROCESSES)],
                             env=sdk_env(server.url, tmp_path, trap.url), capture_output=True, text=True, timeout=540)
    finally:
        trap.close()
    assert run.returncode == 0, run.stderr[-5000:]
    assert trap.attempts == []  # telemetry off: nothing but the local store was called
    seen = json.loads(run.stdout.strip().splitlines()[-1])

    assert seen["definitions"] == [["record_id", "String"], ["event_time", "Fractional"], ["value", "Integral"],
                                   ["score", "Fractional"], ["label", "String"]]
    table = seen["catalog"]["TableName"]
    assert seen["catalog"]["Database"] == "sagemaker_featurestore" and table.startswith("sdk_features_")
    assert seen["resolved_output"].startswith("s3://sdk-bucket/offline/000000000000/sagemaker/us-east-1/offline-store/"
                                              "sdk_features-") and seen["resolved_output"].endswith("/data")
    # ingest with 4 threads in each of 2 processes: every row online, once
    assert seen["failed_rows"] == [] and (seen["online_count"], seen["online_distinct"]) == (ROWS + 0, ROWS)

    assert {f["FeatureName"]: f["ValueAsString"] for f in seen["get_record"]} == {
        "record_id": "r00042", "event_time": "1714521600.0", "value": "42", "score": repr(42 / 7), "label": "label 2"}
    assert seen["get_record_some"] == [{"FeatureName": "value", "ValueAsString": "42"}]
    assert seen["batch_get"] == ["r00001", "r00002"]
    assert {f["FeatureName"]: f["ValueAsString"] for f in seen["put_then_get"]}["label"] == "put"
    expires = datetime.fromtimestamp(seen["put_event_time"] + 3600, tz=timezone.utc)
    assert seen["expires_at"] == expires.strftime("%Y-%m-%dT%H:%M:%S.000Z")  # event time + the record's 1 hour
    assert seen["deleted_get"] is None
    assert seen["update_status"] == {"Status": "Successful"}
    assert seen["added_get"] == [{"FeatureName": "added", "ValueAsString": "new"}]
    assert seen["ttl"] == {"Unit": "Days", "Value": 7}
    assert seen["metadata"] == {"FeatureName": "value", "FeatureType": "Integral", "Description": "the row number",
                                "Parameters": [{"Key": "unit", "Value": "rows"}]}
    assert seen["parameters"] == [{"Key": "unit", "Value": "rows"}]
    assert seen["athena"] == ["AwsDataCatalog", "sagemaker_featurestore", table]
    assert [line.strip() for line in seen["hive_ddl_location"]] == [f"LOCATION '{seen['resolved_output']}'"]
    assert seen["listed"] == ["sdk_features"] and seen["tags"] == []
    assert seen["iceberg_format"] == "Iceberg" and seen["after_delete"] == []

    # offline: every ingested row once (the Glue table outlives the deleted group, as on AWS)
    server.store.flush_offline()
    counted = run_query(DataDir(data_dir).featurestore,
                        f'SELECT count(*), count(DISTINCT record_id) FROM "sagemaker_featurestore"."{table}" '
                        "WHERE event_time = 1714521600.0 AND NOT is_deleted AND added IS NULL")
    assert counted[1] == [(ROWS, ROWS)]
