"""The SageMaker Python SDK v3 (3.27: sagemaker-core's FeatureGroup resource, sagemaker-mlops' feature_store
helpers; in a venv of its own, tests/support/venvs.py) drives the real local feature store as a v3 user's notebook
would: the group's life cycle, every record call, both ingest_dataframe paths (PutRecord and BatchWriteRecord),
feature metadata, tags and as_hive_ddl, with a List feature inferred from a DataFrame's list column (collection
types need an InMemory online store). v3 builds its own clients: AWS_ENDPOINT_URL_SAGEMAKER and
AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME are what point it here."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone

import pytest

from connectors.featurestore.local.offline import run_query
from job.local.data_dir import DataDir
from tests.support.sagemaker_sdk import V3_SCRIPT, OutboundTrap, sdk_env
from tests.support.venvs import SAGEMAKER_SDK_V3, cached_venv

pytestmark = pytest.mark.slow

ROWS = 200  # half through PutRecord, half through BatchWriteRecord (8 batches of 25 over 2 workers)


@pytest.fixture(scope="module")
def sdk_python() -> str:
    return str(cached_venv("sagemaker-v3", SAGEMAKER_SDK_V3))


def test_the_v3_sdk_works_against_the_local_store(sdk_python, server, data_dir, tmp_path) -> None:
    trap = OutboundTrap()
    try:
        run = subprocess.run([sdk_python, "-I", str(V3_SCRIPT), str(ROWS)], env=sdk_env(server.url, tmp_path, trap.url),
                             capture_output=True, text=True, timeout=300)
    finally:
        trap.close()
    assert run.returncode == 0, run.stderr[-5000:]
    assert trap.attempts == []  # telemetry off: nothing but the local store was called
    seen = json.loads(run.stdout.strip().splitlines()[-1])

    # load_feature_definitions_from_dataframe infers a List from the list column; create / wait_for_status / get
    declared = [["wallet", "String", None], ["event_time", "Fractional", None], ["tx_count", "Integral", None],
                ["inputs", "String", "List"]]
    assert seen["inferred"] == declared and seen["definitions"] == declared
    assert (seen["status"], seen["storage_type"]) == ("Created", "InMemory")
    assert seen["resolved_output"].startswith("s3://sdk3-bucket/offline/000000000000/sagemaker/us-east-1/offline-store/"
                                              "sdk3_wallets-")
    assert seen["tags"] == [["team", "chain"]] and seen["tags_added"] == [["stage", "test"], ["team", "chain"]]

    # ingest_dataframe, PutRecord and BatchWriteRecord: every row online once, lists as ValueAsStringList
    assert seen["failed_rows"] == [[], []] and (seen["online_count"], seen["online_distinct"]) == (ROWS, ROWS)
    assert seen["get_record"] == {"wallet": "w00003", "event_time": "1714521600.0", "tx_count": "3",
                                  "inputs": ["addr3", "addr4"]}
    assert seen["get_record_some"] == {"inputs": ["addr3", "addr4"]}
    assert seen["batch_get"] == [["w00001", ["addr1", "addr2"]], [f"w{ROWS - 1:05d}", ["addr3", "addr4"]]]

    # put_record with a TTL, get_record with ExpiresAt
    assert seen["put_then_get"]["inputs"] == ["x", "y", "x"] and seen["put_then_get"]["tx_count"] == "-1"
    put_at = float(seen["put_then_get"]["event_time"])
    assert seen["expires_at"] == datetime.fromtimestamp(put_at + 3600, tz=timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")  # event time + 1 hour

    # batch_write_record: entry errors in their place. v3 serializes shapes without their falsy members
    # (sagemaker.core.utils._serialize_shape), so an empty ValueAsStringList never reaches the store: b0 arrives
    # without a value and is refused, as it would be by AWS; "bad" gives a List a ValueAsString.
    assert seen["batch_write_errors"] == [["ValidationError", "b0"], ["ValidationError", "bad"]]
    assert seen["batch_written"]["inputs"] == ["i", "i"] and seen["batch_empty_list"] == ""

    # update_record (the mlops helper and the resource's), delete_record, list_records paging
    assert seen["updated"] == {"wallet": "w00003", "event_time": "1714521600.0", "tx_count": "333", "inputs": ["only"]}
    assert seen["updated_by_resource"] == {"tx_count": "444"}
    assert seen["deleted_get"] == "" and seen["list_page"] == [5, True]

    # update (a Set feature added; a TTL) and refresh until LastUpdateStatus is Successful
    assert (seen["update_status"], seen["added"]) == ("Successful", "labels")
    assert (seen["ttl_status"], seen["ttl"]) == ("Successful", ["Days", 7])
    assert seen["metadata"] == ["tx_count", "Integral", "transactions of the wallet", [["unit", "tx"]]]

    # as_hive_ddl names the group's columns and its offline location; v3 3.27's DDL itself is not valid Hive
    # (no commas between columns, collections as scalars, event_time twice): the SDK's, left as it is
    ddl = seen["hive_ddl"].splitlines()
    assert ddl[0] == "CREATE EXTERNAL TABLE IF NOT EXISTS sagemaker_featurestore.sdk3_wallets ("
    assert [line.split()[0] for line in ddl[1:6]] == ["wallet", "event_time", "tx_count", "inputs", "labels"]
    assert ddl[-1] == f"LOCATION '{seen['resolved_output']}'"
    assert seen["after_delete"] == []  # delete, wait_for_delete, get_all

    # offline: every ingested row once, its List as an array (the Glue table outlives the deleted group)
    counted = run_query(DataDir(data_dir).featurestore,
                        f'SELECT count(*), count(DISTINCT wallet), max(len(inputs)) FROM "sagemaker_featurestore".'
                        f'"{seen["table"]}" WHERE wallet LIKE \'w%\' AND event_time = 1714521600.0 AND NOT is_deleted '
                        "AND tx_count < 300")
    assert counted[1] == [(ROWS, ROWS, 2)]
