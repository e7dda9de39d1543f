"""Unmodified SageMaker Python SDK (v2) feature-store code, run in the SDK's own venv (tests/support/venvs.py)
against whatever AWS_ENDPOINT_URL_SAGEMAKER and AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME name.
It imports nothing of chainfeat. It prints one JSON object: what each step saw, for the test to check.

    python sagemaker_sdk_client.py ROWS WORKERS PROCESSES
"""

from __future__ import annotations

import json
import sys
import time

import boto3
import pandas as pd
from sagemaker.feature_store.feature_definition import FeatureDefinition, FeatureTypeEnum
from sagemaker.feature_store.feature_group import FeatureGroup
from sagemaker.feature_store.feature_store import FeatureStore
from sagemaker.feature_store.inputs import (
    FeatureParameter,
    FeatureValue,
    Identifier,
    OnlineStoreConfigUpdate,
    TableFormatEnum,
    TtlDuration,
)
from sagemaker.session import Session

T0 = 1_714_521_600.0
ROLE = "arn:aws:iam::000000000000:role/FeatureStore"


def wait(group: FeatureGroup, ready) -> dict:
    for _ in range(600):
        described = group.describe()
        if ready(described):
            return described
        time.sleep(0.1)
    raise TimeoutError(f"{group.name} never got ready: {described}")


def online_ids(session: Session, name: str) -> list[str]:
    runtime = session.sagemaker_featurestore_runtime_client
    ids, token = [], None
    while True:
        page = runtime.list_records(FeatureGroupName=name, MaxResults=100, **({"NextToken": token} if token else {}))
        ids += page["RecordIdentifiers"]
        token = page.get("NextToken")
        if not token:
            return ids


def main(rows: int, workers: int, processes: int) -> dict:
    session = Session(boto_session=boto3.Session())
    store = FeatureStore(sagemaker_session=session)
    seen: dict = {}

    frame = pd.DataFrame({
        "record_id": pd.Series([f"r{n:05d}" for n in range(rows)], dtype="string"),  # pandas 3: "str" is not mapped
        "event_time": [T0] * rows,
        "value": list(range(rows)),
        "score": [n / 7 for n in range(rows)],
        "label": pd.Series([f"label {n % 10}" for n in range(rows)], dtype="string"),
    })
    group = FeatureGroup(name="sdk_features", sagemaker_session=session)
    seen["definitions"] = [(d.feature_name, d.feature_type.value) for d in group.load_feature_definitions(frame)]
    group.create(s3_uri="s3://sdk-bucket/offline", record_identifier_name="record_id",
                 event_time_feature_name="event_time", role_arn=ROLE, enable_online_store=True,
                 table_format=TableFormatEnum.GLUE, description="made by the SageMaker SDK")
    described = wait(group, lambda d: d["FeatureGroupStatus"] == "Created")
    seen["catalog"] = described["OfflineStoreConfig"]["DataCatalogConfig"]
    seen["resolved_output"] = described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]

    manager = group.ingest(data_frame=frame, max_workers=workers, max_processes=processes, wait=True)
    seen["failed_rows"] = list(manager.failed_rows)
    ids = online_ids(session, group.name)
    seen["online_count"], seen["online_distinct"] = len(ids), len(set(ids))

    seen["get_record"] = group.get_record(record_identifier_value_as_string="r00042")
    seen["get_record_some"] = group.get_record(record_identifier_value_as_string="r00042", feature_names=["value"])
    batch = store.batch_get_record(identifiers=[Identifier(feature_group_name=group.name,
                                                           record_identifiers_value_as_string=["r00001", "r00002", "nope"])])
    seen["batch_get"] = sorted(record["RecordIdentifierValueAsString"] for record in batch["Records"])

    now = float(int(time.time()))  # a TTL counts from the event time: an old one would have expired already
    seen["put_event_time"] = now
    group.put_record(record=[FeatureValue("record_id", "extra"), FeatureValue("event_time", str(now)),
                             FeatureValue("value", "-1"), FeatureValue("score", "0.5"), FeatureValue("label", "put")],
                     ttl_duration=TtlDuration(unit="Hours", value=1))
    seen["put_then_get"] = group.get_record(record_identifier_value_as_string="extra")
    expiring = session.sagemaker_featurestore_runtime_client.get_record(
        FeatureGroupName=group.name, RecordIdentifierValueAsString="extra", ExpirationTimeResponse="Enabled")
    seen["expires_at"] = expiring.get("ExpiresAt")
    group.delete_record(record_identifier_value_as_string="extra", event_time=str(now + 60))
    seen["deleted_get"] = group.get_record(record_identifier_value_as_string="extra")

    group.update(feature_additions=[FeatureDefinition("added", FeatureTypeEnum.STRING)])
    seen["update_status"] = wait(group, lambda d: (d.get("LastUpdateStatus") or {}).get("Status") == "Successful"
                                 )["LastUpdateStatus"]
    group.put_record(record=[FeatureValue("record_id", "r00042"), FeatureValue("event_time", str(T0 + 1)),
                             FeatureValue("value", "42"), FeatureValue("added", "new")])
    seen["added_get"] = group.get_record(record_identifier_value_as_string="r00042", feature_names=["added"])
    group.update(online_store_config=OnlineStoreConfigUpdate(ttl_duration=TtlDuration(unit="Days", value=7)))
    seen["ttl"] = wait(group, lambda d: d["LastUpdateStatus"]["Status"] == "Successful")["OnlineStoreConfig"]["TtlDuration"]

    group.update_feature_metadata(feature_name="value", description="the row number",
                                  parameter_additions=[FeatureParameter(key="unit", value="rows")])
    seen["metadata"] = {key: value for key, value in group.describe_feature_metadata(feature_name="value").items()
                        if key in ("FeatureName", "FeatureType", "Description", "Parameters")}
    seen["parameters"] = group.list_parameters_for_feature_metadata(feature_name="value")

    query = group.athena_query()
    seen["athena"] = [query.catalog, query.database, query.table_name]
    seen["hive_ddl_location"] = [line for line in group.as_hive_ddl().splitlines() if "LOCATION" in line]
    seen["listed"] = [s["FeatureGroupName"] for s in store.list_feature_groups(name_contains="sdk")["FeatureGroupSummaries"]]
    seen["tags"] = group.list_tags()

    iceberg = FeatureGroup(name="sdk_iceberg", sagemaker_session=session)
    iceberg.load_feature_definitions(frame)
    iceberg.create(s3_uri="s3://sdk-bucket/iceberg", record_identifier_name="record_id",
                   event_time_feature_name="event_time", role_arn=ROLE, table_format=TableFormatEnum.ICEBERG)
    seen["iceberg_format"] = wait(iceberg, lambda d: d["FeatureGroupStatus"] == "Created")["OfflineStoreConfig"]["TableFormat"]
    iceberg.delete()
    group.delete()
    seen["after_delete"] = [s["FeatureGroupName"] for s in store.list_feature_groups()["FeatureGroupSummaries"]]
    return seen


if __name__ == "__main__":
    print(json.dumps(main(*map(int, sys.argv[1:4])), default=str))
