"""Unmodified SageMaker Python SDK v3 feature-store code (sagemaker-core's FeatureGroup resource, sagemaker-mlops'
feature_store helpers), run in the SDK's own venv (tests/support/venvs.py) against whatever
AWS_ENDPOINT_URL_SAGEMAKER and AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME name: v3 builds its own boto3
clients, so the endpoint variables are the only way in. It imports nothing of chainfeat. It prints one JSON
object: what each step saw, for the test to check.

    python sagemaker_sdk_v3_client.py ROWS
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
from sagemaker.core.resources import Tag
from sagemaker.core.shapes import (
    BatchGetRecordIdentifier,
    BatchWriteRecordEntry,
    OnlineStoreConfigUpdate,
)
from sagemaker.core.shapes import Tag as TagShape  # what create and add_tags take; the resource Tag lists them
from sagemaker.mlops.feature_store import (
    FeatureGroup,
    FeatureMetadata,
    FeatureParameter,
    FeatureValue,
    OfflineStoreConfig,
    OnlineStoreConfig,
    S3StorageConfig,
    SetCollectionType,
    StringFeatureDefinition,
    TtlDuration,
    as_hive_ddl,
    ingest_dataframe,
    list_records,
    load_feature_definitions_from_dataframe,
    update_record,
)

T0 = 1_714_521_600.0
ROLE = "arn:aws:iam::000000000000:role/FeatureStore"


def values(record) -> dict:
    """A Record (FeatureValue shapes) as {name: value or list of values}."""
    return {f.feature_name: f.value_as_string_list if isinstance(f.value_as_string_list, list) else f.value_as_string
            for f in record}


def all_ids(group: str) -> list[str]:
    ids, token = [], None
    while True:
        page = list_records(group, max_results=100, **({"next_token": token} if token else {}))
        ids += page.record_identifiers
        token = page.next_token if isinstance(page.next_token, str) and page.next_token else None
        if not token:
            return ids


def wait_for_update(group: FeatureGroup) -> str:
    for _ in range(300):
        group.refresh()
        status = group.last_update_status.status
        if status != "InProgress":
            return status
        time.sleep(0.1)
    raise TimeoutError(f"{group.feature_group_name}: update still in progress")


def main(rows: int) -> dict:
    seen: dict = {}
    frame = pd.DataFrame({
        "wallet": pd.Series([f"w{n:05d}" for n in range(rows)], dtype="string"),
        "event_time": [T0] * rows,
        "tx_count": list(range(rows)),
        "inputs": [[f"addr{n % 7}", f"addr{(n + 1) % 7}"] for n in range(rows)],  # a list column: List of String
    })
    definitions = load_feature_definitions_from_dataframe(frame, online_storage_type="InMemory")
    seen["inferred"] = [(d.feature_name, d.feature_type, getattr(d, "collection_type", None)) for d in definitions]

    group = FeatureGroup.create(
        feature_group_name="sdk3_wallets", record_identifier_feature_name="wallet", event_time_feature_name="event_time",
        feature_definitions=definitions, role_arn=ROLE, description="made by the SageMaker SDK v3",
        online_store_config=OnlineStoreConfig(enable_online_store=True, storage_type="InMemory"),
        offline_store_config=OfflineStoreConfig(s3_storage_config=S3StorageConfig(s3_uri="s3://sdk3-bucket/offline")),
        tags=[TagShape(key="team", value="chain")])
    group.wait_for_status(target_status="Created", poll=1, timeout=60)
    fetched = FeatureGroup.get(feature_group_name="sdk3_wallets")
    seen["status"] = fetched.feature_group_status
    seen["definitions"] = [(d.feature_name, d.feature_type, d.collection_type if isinstance(d.collection_type, str)
                            else None) for d in fetched.feature_definitions]
    seen["storage_type"] = fetched.online_store_config.storage_type
    seen["resolved_output"] = fetched.offline_store_config.s3_storage_config.resolved_output_s3_uri
    seen["table"] = fetched.offline_store_config.data_catalog_config.table_name
    seen["tags"] = [(tag.key, tag.value) for tag in Tag.get_all(resource_arn=fetched.feature_group_arn)]
    Tag.add_tags(resource_arn=fetched.feature_group_arn, tags=[TagShape(key="stage", value="test")])
    seen["tags_added"] = sorted((tag.key, tag.value) for tag in Tag.get_all(resource_arn=fetched.feature_group_arn))

    # ingest_dataframe: first with PutRecord (the default), then with BatchWriteRecord, over the same rows
    half = rows // 2
    put_manager = ingest_dataframe("sdk3_wallets", frame.iloc[:half], max_workers=2, max_processes=1)
    batch_manager = ingest_dataframe("sdk3_wallets", frame.iloc[half:], max_workers=2, max_processes=1,
                                     use_batch_write_record=True)
    seen["failed_rows"] = [list(put_manager.failed_rows), list(batch_manager.failed_rows)]
    ids = all_ids("sdk3_wallets")
    seen["online_count"], seen["online_distinct"] = len(ids), len(set(ids))

    seen["get_record"] = values(group.get_record(record_identifier_value_as_string="w00003").record)
    seen["get_record_some"] = values(group.get_record(record_identifier_value_as_string="w00003",
                                                      feature_names=["inputs"]).record)
    batch = group.batch_get_record(identifiers=[BatchGetRecordIdentifier(
        feature_group_name="sdk3_wallets", record_identifiers_value_as_string=["w00001", f"w{rows - 1:05d}", "nope"])])
    seen["batch_get"] = sorted((r.record_identifier_value_as_string, values(r.record)["inputs"]) for r in batch.records)

    now = float(int(time.time()))  # a TTL counts from the event time: an old one would have expired already
    group.put_record(record=[FeatureValue(feature_name="wallet", value_as_string="extra"),
                             FeatureValue(feature_name="event_time", value_as_string=str(now)),
                             FeatureValue(feature_name="tx_count", value_as_string="-1"),
                             FeatureValue(feature_name="inputs", value_as_string_list=["x", "y", "x"])],
                     ttl_duration=TtlDuration(unit="Hours", value=1))
    extra = group.get_record(record_identifier_value_as_string="extra", expiration_time_response="Enabled")
    seen["put_then_get"], seen["expires_at"] = values(extra.record), str(extra.expires_at)

    written = group.batch_write_record(entries=[
        BatchWriteRecordEntry(feature_group_name="sdk3_wallets", record=[
            FeatureValue(feature_name="wallet", value_as_string=f"b{n}"),
            FeatureValue(feature_name="event_time", value_as_string=str(T0)),
            FeatureValue(feature_name="tx_count", value_as_string=str(n)),
            FeatureValue(feature_name="inputs", value_as_string_list=["i"] * n)]) for n in range(3)] + [
        BatchWriteRecordEntry(feature_group_name="sdk3_wallets", record=[
            FeatureValue(feature_name="wallet", value_as_string="bad"),
            FeatureValue(feature_name="event_time", value_as_string=str(T0)),
            FeatureValue(feature_name="inputs", value_as_string="not a list")])])
    seen["batch_write_errors"] = [(e.error_code, e.entry.record[0].value_as_string) for e in written.errors]
    seen["batch_written"] = values(group.get_record(record_identifier_value_as_string="b2").record)
    seen["batch_empty_list"] = str(group.get_record(record_identifier_value_as_string="b0").record)

    update_record("sdk3_wallets", "w00003", [{"FeatureName": "tx_count", "ValueAsString": "333"},
                                             {"FeatureName": "inputs", "ValueAsStringList": ["only"]}])
    seen["updated"] = values(group.get_record(record_identifier_value_as_string="w00003").record)
    group.update_record(record_identifier_value_as_string="w00004",
                        features=[FeatureValue(feature_name="tx_count", value_as_string="444")])
    seen["updated_by_resource"] = values(group.get_record(record_identifier_value_as_string="w00004",
                                                          feature_names=["tx_count"]).record)
    group.delete_record(record_identifier_value_as_string="extra", event_time=str(now + 60))
    seen["deleted_get"] = str(group.get_record(record_identifier_value_as_string="extra").record)
    first_page = group.list_records(max_results=5)
    seen["list_page"] = [len(first_page.record_identifiers), isinstance(first_page.next_token, str)]

    group.update(feature_additions=[StringFeatureDefinition("labels", SetCollectionType())])
    seen["update_status"] = wait_for_update(group)
    seen["added"] = [d.feature_name for d in group.feature_definitions][-1]
    group.update(online_store_config=OnlineStoreConfigUpdate(ttl_duration=TtlDuration(unit="Days", value=7)))
    seen["ttl_status"] = wait_for_update(group)
    seen["ttl"] = [group.online_store_config.ttl_duration.unit, group.online_store_config.ttl_duration.value]

    metadata = FeatureMetadata.get(feature_group_name="sdk3_wallets", feature_name="tx_count")
    metadata.update(description="transactions of the wallet",
                    parameter_additions=[FeatureParameter(key="unit", value="tx")])
    metadata = FeatureMetadata.get(feature_group_name="sdk3_wallets", feature_name="tx_count")
    seen["metadata"] = [metadata.feature_name, metadata.feature_type, metadata.description,
                        [(p.key, p.value) for p in metadata.parameters]]

    seen["hive_ddl"] = as_hive_ddl("sdk3_wallets")

    group.delete()
    group.wait_for_delete(poll=1, timeout=60)
    seen["after_delete"] = [g.feature_group_name for g in FeatureGroup.get_all()]
    return seen


if __name__ == "__main__":
    seen = main(int(sys.argv[1]))
    print("\n" + json.dumps(seen, default=str))  # on a line of its own: the SDK's wait panels end without one
