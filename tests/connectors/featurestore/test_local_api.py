"""Every Feature Store operation botocore models, driven through boto3 against the real local server:
TTL, UpdateFeatureGroup and its LastUpdateStatus, feature metadata, UpdateRecord, paging, the documented
limits and what DescribeFeatureGroup says about the offline store. The store's clock is set by the tests
(server.store.clock), so expiry and update delays are exact, not waited for."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.support.store_records import DEFINITIONS, GROUP, offline_rows, record

T0 = 1_714_521_600.0  # 2024-05-01 00:00:00 UTC


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(server) -> Clock:
    server.store.clock = clock = Clock(T0)
    return clock


def create(control, name: str = GROUP, **extra) -> dict:
    control.create_feature_group(
        FeatureGroupName=name, RecordIdentifierFeatureName="tx_minute", EventTimeFeatureName="event_time",
        FeatureDefinitions=DEFINITIONS, **{"OnlineStoreConfig": {"EnableOnlineStore": True}, **extra},
    )
    return control.describe_feature_group(FeatureGroupName=name)


def values(api_record) -> dict[str, str]:
    return {item["FeatureName"]: item["ValueAsString"] for item in api_record}


def get(runtime, record_id: str, **kwargs) -> dict:
    return runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString=record_id, **kwargs)


# ---- DescribeFeatureGroup: the offline store as SageMaker reports it ------------------------------------

def test_describe_gives_the_offline_layout_and_glue_table(control, clock) -> None:
    described = create(control, OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://my-bucket/features/"}},
                       RoleArn="arn:aws:iam::123456789012:role/FeatureStore")
    offline = described["OfflineStoreConfig"]
    assert offline["S3StorageConfig"] == {
        "S3Uri": "s3://my-bucket/features/",
        "ResolvedOutputS3Uri": f"s3://my-bucket/features/000000000000/sagemaker/us-east-1/offline-store/"
                               f"{GROUP}-{int(T0)}/data",
    }
    assert offline["DataCatalogConfig"] == {"TableName": f"{GROUP}_{int(T0)}", "Catalog": "AwsDataCatalog",
                                            "Database": "sagemaker_featurestore"}
    assert offline["DisableGlueTableCreation"] is False and offline["TableFormat"] == "Glue"
    assert described["OnlineStoreConfig"] == {"EnableOnlineStore": True, "StorageType": "Standard"}
    assert described["ThroughputConfig"] == {"ThroughputMode": "OnDemand"}
    assert described["RoleArn"].endswith("role/FeatureStore") and "LastUpdateStatus" not in described


def test_a_group_without_offline_config_still_has_one_locally_and_catalog_names_are_kept(control, clock) -> None:
    assert create(control)["OfflineStoreConfig"]["S3StorageConfig"]["S3Uri"] == (
        "s3://sagemaker-us-east-1-000000000000/feature-store")
    catalog = {"TableName": "my_table", "Catalog": "AwsDataCatalog", "Database": "my_db"}
    described = create(control, "iceberg_group", OfflineStoreConfig={
        "S3StorageConfig": {"S3Uri": "s3://b"}, "TableFormat": "Iceberg", "DataCatalogConfig": catalog})
    assert described["OfflineStoreConfig"]["DataCatalogConfig"] == catalog
    assert described["OfflineStoreConfig"]["TableFormat"] == "Iceberg"


@pytest.mark.parametrize(("change", "message"), [
    ({"FeatureDefinitions": [*DEFINITIONS, {"FeatureName": "write_time", "FeatureType": "String"}]}, "reserved"),
    ({"OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": "/tmp/x"}}}, "s3://"),
    ({"OnlineStoreConfig": {"EnableOnlineStore": True, "TtlDuration": {"Unit": "Years", "Value": 1}}}, "Unit"),
    ({"OnlineStoreConfig": None}, "at least one of OnlineStoreConfig and OfflineStoreConfig"),
], ids=["reserved-name", "not-s3", "ttl-unit", "no-store"])
def test_create_validation_is_a_validation_exception(control, change, message) -> None:
    request = {"FeatureGroupName": GROUP, "RecordIdentifierFeatureName": "tx_minute", "EventTimeFeatureName": "event_time",
               "FeatureDefinitions": DEFINITIONS, "OnlineStoreConfig": {"EnableOnlineStore": True}, **change}
    with pytest.raises(ClientError) as raised:
        control.create_feature_group(**{key: value for key, value in request.items() if value is not None})
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert message in raised.value.response["Error"]["Message"]


def test_list_feature_groups_filters_sorts_and_pages(control, clock) -> None:
    for offset, name in enumerate(["b_group", "a_group", "c_other"]):
        clock.now = T0 + offset
        create(control, name)
    by_name = control.list_feature_groups(SortBy="Name", SortOrder="Descending")["FeatureGroupSummaries"]
    assert [s["FeatureGroupName"] for s in by_name] == ["c_other", "b_group", "a_group"]
    assert [s["FeatureGroupName"] for s in control.list_feature_groups(NameContains="group")["FeatureGroupSummaries"]] == [
        "b_group", "a_group"]
    after = control.list_feature_groups(CreationTimeAfter=T0 + 0.5)["FeatureGroupSummaries"]
    assert [s["FeatureGroupName"] for s in after] == ["a_group", "c_other"]
    pages = control.get_paginator("list_feature_groups").paginate(PaginationConfig={"PageSize": 2})
    assert [len(page["FeatureGroupSummaries"]) for page in pages] == [2, 1]


# ---- UpdateFeatureGroup -------------------------------------------------------------------------------

def test_feature_additions_apply_after_in_progress_and_keep_the_data(control, runtime, server, clock, data_dir) -> None:
    create(control)
    server.store.update_delay_s = 60
    runtime.put_record(FeatureGroupName=GROUP, Record=record("m1", "100", count="1"))
    control.update_feature_group(FeatureGroupName=GROUP,
                                 FeatureAdditions=[{"FeatureName": "max_fee", "FeatureType": "Integral"}])
    during = control.describe_feature_group(FeatureGroupName=GROUP)
    assert during["LastUpdateStatus"] == {"Status": "InProgress"} and len(during["FeatureDefinitions"]) == 4
    with_new = record("m2", "200") + [{"FeatureName": "max_fee", "ValueAsString": "7"}]
    with pytest.raises(runtime.exceptions.ValidationError, match="max_fee"):  # not yet applied
        runtime.put_record(FeatureGroupName=GROUP, Record=with_new)
    with pytest.raises(control.exceptions.ResourceInUse):  # one update at a time
        control.update_feature_group(FeatureGroupName=GROUP, OnlineStoreConfig={"TtlDuration": {"Unit": "Hours", "Value": 1}})

    clock.now += 60
    after = control.describe_feature_group(FeatureGroupName=GROUP)
    assert after["LastUpdateStatus"] == {"Status": "Successful"}
    assert after["FeatureDefinitions"] == [*DEFINITIONS, {"FeatureName": "max_fee", "FeatureType": "Integral"}]
    runtime.put_record(FeatureGroupName=GROUP, Record=with_new)
    assert values(get(runtime, "m2")["Record"])["max_fee"] == "7"
    assert "max_fee" not in values(get(runtime, "m1")["Record"])  # an older record has no value for it
    server.store.flush_offline()
    assert sorted((row["tx_minute"], row.get("max_fee")) for row in offline_rows(data_dir)) == [("m1", None), ("m2", 7)]


@pytest.mark.parametrize(("request_", "code"), [
    ({"FeatureAdditions": [{"FeatureName": "count", "FeatureType": "String"}]}, "ValidationException"),
    ({"FeatureAdditions": [{"FeatureName": "is_deleted", "FeatureType": "String"}]}, "ValidationException"),
    ({"FeatureAdditions": [{"FeatureName": f"f{n}", "FeatureType": "String"} for n in range(101)]}, "ValidationException"),
    ({}, "ValidationException"),
    ({"FeatureAdditions": [{"FeatureName": "x", "FeatureType": "String"}],
      "ThroughputConfig": {"ThroughputMode": "OnDemand"}}, "ValidationException"),
    ({"OnlineStoreConfig": {"StorageType": "InMemory"}}, "ValidationException"),
], ids=["existing-feature", "reserved", "over-100", "nothing", "two-at-once", "storage-type"])
def test_updates_the_service_refuses(control, request_, code) -> None:
    create(control)
    with pytest.raises(ClientError) as raised:
        control.update_feature_group(FeatureGroupName=GROUP, **request_)
    assert raised.value.response["Error"]["Code"] == code
    assert "LastUpdateStatus" not in control.describe_feature_group(FeatureGroupName=GROUP)
    with pytest.raises(control.exceptions.ResourceNotFound):
        control.update_feature_group(FeatureGroupName="nope", FeatureAdditions=[{"FeatureName": "x", "FeatureType": "String"}])


# ---- time to live ----------------------------------------------------------------------------------------

def test_group_ttl_expires_records_with_expires_at_and_a_deleted_marker_offline(control, runtime, server, clock,
                                                                               data_dir) -> None:
    create(control, OnlineStoreConfig={"EnableOnlineStore": True, "TtlDuration": {"Unit": "Seconds", "Value": 2}})
    runtime.put_record(FeatureGroupName=GROUP, Record=record("m", str(T0)))
    assert get(runtime, "m", ExpirationTimeResponse="Enabled")["ExpiresAt"] == "2024-05-01T00:00:02.000Z"
    assert "ExpiresAt" not in get(runtime, "m")  # only when asked for
    batch = runtime.batch_get_record(Identifiers=[{"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": ["m"]}],
                                     ExpirationTimeResponse="Enabled")
    assert batch["Records"][0]["ExpiresAt"] == "2024-05-01T00:00:02.000Z"

    clock.now = T0 + 3  # ExpiresAt = EventTime + TtlDuration has passed: no longer served anywhere
    assert "Record" not in get(runtime, "m")
    assert runtime.batch_get_record(Identifiers=[{"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": ["m"]}]
                                    )["Records"] == []
    assert runtime.list_records(FeatureGroupName=GROUP)["RecordIdentifiers"] == []
    server.store.flush_offline()  # the TTL sweep hard-deletes it and appends the deleted marker offline
    assert sorted((row["tx_minute"], row["is_deleted"]) for row in offline_rows(data_dir)) == [("m", False), ("m", True)]
    runtime.put_record(FeatureGroupName=GROUP, Record=record("m", str(T0 + 1)))  # an expired record is gone:
    assert "Record" not in get(runtime, "m")  # an older write is new again (and already expired itself)


def test_record_ttl_overrides_the_group_default_in_put_and_batch_write(control, runtime, clock) -> None:
    create(control, OnlineStoreConfig={"EnableOnlineStore": True, "TtlDuration": {"Unit": "Days", "Value": 1}})
    runtime.put_record(FeatureGroupName=GROUP, Record=record("put", str(T0)), TtlDuration={"Unit": "Minutes", "Value": 1})
    runtime.batch_write_record(
        Entries=[{"FeatureGroupName": GROUP, "Record": record("entry", str(T0)), "TtlDuration": {"Unit": "Hours", "Value": 1}},
                 {"FeatureGroupName": GROUP, "Record": record("request", str(T0))}],
        TtlDuration={"Unit": "Weeks", "Value": 1})
    expires = {key: get(runtime, key, ExpirationTimeResponse="Enabled")["ExpiresAt"] for key in ("put", "entry", "request")}
    assert expires == {"put": "2024-05-01T00:01:00.000Z", "entry": "2024-05-01T01:00:00.000Z",
                       "request": "2024-05-08T00:00:00.000Z"}


def test_ttl_set_by_update_applies_to_records_written_after_it(control, runtime, server, clock) -> None:
    create(control)
    server.store.update_delay_s = 0
    runtime.put_record(FeatureGroupName=GROUP, Record=record("before", str(T0)))
    control.update_feature_group(FeatureGroupName=GROUP, OnlineStoreConfig={"TtlDuration": {"Unit": "Seconds", "Value": 5}})
    runtime.put_record(FeatureGroupName=GROUP, Record=record("after", str(T0)))
    clock.now = T0 + 10
    assert "Record" in get(runtime, "before") and "Record" not in get(runtime, "after")
    assert control.describe_feature_group(FeatureGroupName=GROUP)["OnlineStoreConfig"]["TtlDuration"] == {
        "Unit": "Seconds", "Value": 5}


def test_ttl_needs_an_online_store(control, runtime) -> None:
    control.create_feature_group(FeatureGroupName=GROUP, RecordIdentifierFeatureName="tx_minute",
                                 EventTimeFeatureName="event_time", FeatureDefinitions=DEFINITIONS,
                                 OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://b"}})
    with pytest.raises(runtime.exceptions.ValidationError, match="online store"):
        runtime.put_record(FeatureGroupName=GROUP, Record=record("m", "1"), TtlDuration={"Unit": "Hours", "Value": 1})
    with pytest.raises(runtime.exceptions.ValidationError, match="OnlineStore"):  # nothing to read online
        get(runtime, "m")
    with pytest.raises(runtime.exceptions.ValidationError, match="TargetStores"):
        runtime.put_record(FeatureGroupName=GROUP, Record=record("m", "1"), TargetStores=["OnlineStore"])
    runtime.put_record(FeatureGroupName=GROUP, Record=record("m", "1"))  # offline only: accepted


# ---- runtime operations --------------------------------------------------------------------------------

def test_update_record_changes_only_the_given_features(control, runtime, server, clock, data_dir) -> None:
    create(control, OnlineStoreConfig={"EnableOnlineStore": True, "StorageType": "Standard_V2"})
    runtime.put_record(FeatureGroupName=GROUP, Record=record("m", "100", count="1", avg_fee="2.5"))
    runtime.update_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="m",
                          Features=[{"FeatureName": "count", "ValueAsString": "5"}])
    assert values(get(runtime, "m")["Record"]) == {"tx_minute": "m", "event_time": "100.0", "count": "5", "avg_fee": "2.5"}
    with pytest.raises(runtime.exceptions.ConflictException):  # an older event time
        runtime.update_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="m",
                              Features=[{"FeatureName": "event_time", "ValueAsString": "50"}])
    with pytest.raises(runtime.exceptions.ValidationError, match="EventTime"):  # TTL needs an event time
        runtime.update_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="m",
                              Features=[{"FeatureName": "count", "ValueAsString": "6"}], TtlDuration={"Unit": "Hours", "Value": 1})
    with pytest.raises(runtime.exceptions.ResourceNotFound):
        runtime.update_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="nobody",
                              Features=[{"FeatureName": "count", "ValueAsString": "1"}])
    runtime.update_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="m", TtlDuration={"Unit": "Seconds", "Value": 9},
                          Features=[{"FeatureName": "event_time", "ValueAsString": str(T0)}])
    assert get(runtime, "m", ExpirationTimeResponse="Enabled")["ExpiresAt"] == "2024-05-01T00:00:09.000Z"
    server.store.flush_offline()
    assert [(row["count"], row["avg_fee"]) for row in offline_rows(data_dir)] == [(1, 2.5), (5, 2.5), (5, 2.5)]


def test_update_record_needs_standard_v2_and_the_group_can_migrate(control, runtime, server) -> None:
    create(control)
    runtime.put_record(FeatureGroupName=GROUP, Record=record("m", "100"))
    with pytest.raises(runtime.exceptions.ValidationError, match="Standard_V2"):
        runtime.update_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="m",
                              Features=[{"FeatureName": "count", "ValueAsString": "5"}])
    server.store.update_delay_s = 0
    control.update_feature_group(FeatureGroupName=GROUP, OnlineStoreConfig={"StorageType": "Standard_V2"})
    runtime.update_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="m",
                          Features=[{"FeatureName": "count", "ValueAsString": "5"}])
    assert values(get(runtime, "m")["Record"])["count"] == "5"


def test_list_records_pages_and_soft_deleted(control, runtime) -> None:
    create(control)
    for batch in range(6):
        runtime.batch_write_record(Entries=[{"FeatureGroupName": GROUP, "Record": record(f"m{25 * batch + n:03d}", "1")}
                                            for n in range(25)])
    runtime.delete_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="m000", EventTime="2")
    ids, token = [], None
    while True:
        page = runtime.list_records(FeatureGroupName=GROUP, MaxResults=100, **({"NextToken": token} if token else {}))
        ids += page["RecordIdentifiers"]
        token = page.get("NextToken")
        if not token:
            break
    assert ids == [f"m{n:03d}" for n in range(1, 150)]
    with_deleted = runtime.list_records(FeatureGroupName=GROUP, IncludeSoftDeletedRecords=True, MaxResults=1)
    assert with_deleted["RecordIdentifiers"] == ["m000"]
    with pytest.raises(runtime.exceptions.ValidationError, match="less than or equal to 100"):
        runtime.list_records(FeatureGroupName=GROUP, MaxResults=101)


def test_hard_delete_removes_the_record(control, runtime, server, data_dir) -> None:
    create(control)
    runtime.put_record(FeatureGroupName=GROUP, Record=record("m", "1"))
    runtime.delete_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="m", EventTime="2", DeletionMode="HardDelete")
    assert runtime.list_records(FeatureGroupName=GROUP, IncludeSoftDeletedRecords=True)["RecordIdentifiers"] == []
    runtime.delete_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="m", EventTime="3",
                          TargetStores=["OfflineStore"])  # a marker offline only
    server.store.flush_offline()
    assert [row["is_deleted"] for row in offline_rows(data_dir)] == [False, True, True]


# ---- limits ------------------------------------------------------------------------------------------------

def test_a_record_over_350_kb_is_a_validation_error_not_a_python_error(control, runtime) -> None:
    create(control)
    with pytest.raises(runtime.exceptions.ValidationError) as raised:
        runtime.put_record(FeatureGroupName=GROUP, Record=record("m", "1", count="9" * 400_000))
    message = raised.value.response["Error"]["Message"]
    assert "exceeds the maximum record size" in message and "4300" not in message and len(message) < 300
    with pytest.raises(runtime.exceptions.ValidationError, match="64-bit"):  # small enough, but not an int64
        runtime.put_record(FeatureGroupName=GROUP, Record=record("m", "1", count="9" * 5000))
    with pytest.raises(runtime.exceptions.ValidationError, match="2 KB"):
        runtime.put_record(FeatureGroupName=GROUP, Record=record("m" * 2049, "1"))


def test_batch_limits(control, runtime) -> None:
    create(control)
    with pytest.raises(runtime.exceptions.ValidationError, match="less than or equal to 100"):
        runtime.batch_get_record(Identifiers=[{"FeatureGroupName": GROUP,
                                               "RecordIdentifiersValueAsString": [str(n) for n in range(101)]}])
    with pytest.raises(runtime.exceptions.ValidationError, match="between 1 and 25"):
        runtime.batch_write_record(Entries=[{"FeatureGroupName": GROUP, "Record": record(str(n), "1")} for n in range(26)])
    found = runtime.batch_get_record(Identifiers=[{"FeatureGroupName": GROUP,
                                                   "RecordIdentifiersValueAsString": [str(n) for n in range(100)]}])
    assert found["Records"] == [] and found["Errors"] == []


# ---- feature metadata and tags -------------------------------------------------------------------------

def test_feature_metadata_describe_and_update(control, clock) -> None:
    create(control, Tags=[{"Key": "team", "Value": "ml"}])
    described = control.describe_feature_metadata(FeatureGroupName=GROUP, FeatureName="count")
    assert (described["FeatureType"], described["Parameters"], described["CreationTime"].timestamp()) == (
        "Integral", [], T0)
    clock.now = T0 + 30
    control.update_feature_metadata(FeatureGroupName=GROUP, FeatureName="count", Description="transactions per minute",
                                    ParameterAdditions=[{"Key": "unit", "Value": "tx"}, {"Key": "owner", "Value": "me"}])
    control.update_feature_metadata(FeatureGroupName=GROUP, FeatureName="count", ParameterRemovals=["owner"])
    described = control.describe_feature_metadata(FeatureGroupName=GROUP, FeatureName="count")
    assert described["Description"] == "transactions per minute"
    assert described["Parameters"] == [{"Key": "unit", "Value": "tx"}]
    assert described["LastModifiedTime"].timestamp() == T0 + 30
    with pytest.raises(control.exceptions.ResourceNotFound):
        control.describe_feature_metadata(FeatureGroupName=GROUP, FeatureName="nope")
    arn = control.describe_feature_group(FeatureGroupName=GROUP)["FeatureGroupArn"]
    control.add_tags(ResourceArn=arn, Tags=[{"Key": "env", "Value": "local"}])
    control.delete_tags(ResourceArn=arn, TagKeys=["team"])
    assert control.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "local"}]


def _outcome(definition, given):
    try:
        return definition.parse_record(given)
    except Exception as error:  # noqa: BLE001 - what the store makes of any error is the point
        return type(error), str(error)


def test_a_record_is_checked_in_one_pass_with_the_long_ways_answers_and_errors() -> None:
    """The store checks a record of scalar values in one pass (model.FeatureGroupDefinition._parse_plain_record) and
    anything else the long way: for every record, valid or not, the answer or the error is the long way's."""
    from connectors.featurestore.model import Collection, CollectionType, FeatureGroupDefinition, FeatureType

    class LongWay(FeatureGroupDefinition):
        def _parse_plain_record(self, record):
            return None

    fractional = FeatureGroupDefinition("g", "id", "t", {"id": FeatureType.STRING, "t": FeatureType.FRACTIONAL,
                                                         "n": FeatureType.INTEGRAL, "f": FeatureType.FRACTIONAL,
                                                         "l": FeatureType.STRING},
                                        collections={"l": Collection(CollectionType.LIST)})
    iso = FeatureGroupDefinition("h", "n", "t", {"n": FeatureType.INTEGRAL, "t": FeatureType.STRING})

    def entry(name, text):
        return {"FeatureName": name, "ValueAsString": text}

    def plain(**texts):
        return [entry(name, text) for name, text in texts.items()]

    records = [
        plain(id="a", t="1714521600.5", n="42", f="0.1"), plain(id="a", t="0", n="+7", f="1e16"),
        plain(id="a", t="1", n="-9223372036854775808", f="5e-324"), plain(id="a", t="1", n="9223372036854775808"),
        plain(id="a", t="1", n="0000000000000000000000001"), plain(id="a", t="1", n=" 5"), plain(id="a", t="1", n="5\n"),
        plain(id="a", t="1", n="1.0"), plain(id="a", t="1", f="nan"), plain(id="a", t="1", f="-inf"),
        plain(id="a", t="1", f="1e400"), plain(id="a", t="1", f=" 2.5 "), plain(id="a", t="1", f="1_000.5"),
        plain(id="a", t="-1"), plain(id="a", t="x"), plain(id="", t="1"), plain(t="1"), plain(id="a"),
        plain(id="é", t="1"), plain(id="a", t="1", f="٣"), plain(id="\ud800", t="1"), plain(id="x" * 2049, t="1"),
        plain(id="a", t="1", n="1" * 30), [*plain(id="a", t="1"), entry("id", "b")],
        [*plain(id="a", t="1"), entry("other", "1")],
        [*plain(id="a", t="1"), entry("l", "x")], [*plain(id="a", t="1"), {"FeatureName": "l", "ValueAsStringList": ["x"]}],
        [*plain(id="a"), {"FeatureName": "t", "ValueAsStringList": ["1"]}], [*plain(t="1"), {"FeatureName": "id"}],
        [*plain(t="1"), {"FeatureName": "id", "ValueAsString": "a", "Extra": 1}], [*plain(t="1"), entry("id", 5)],
        [*plain(t="1"), entry("id", None)], [*plain(t="1"), entry(["id"], "a")], [*plain(t="1"), "id"],
        plain(id="a", t="1", l="y" * (350 * 1024)), {"id": "a"}, [],
    ]
    long_way = LongWay("g", "id", "t", fractional.features, collections=fractional.collections)
    assert fractional._parse_plain_record(records[0]) is not None  # the one pass answers the usual record
    for given in records:
        assert _outcome(fractional, given) == _outcome(long_way, given), given
    for given in [plain(n="1", t="2024-05-01T00:00:00Z"), plain(n="1", t="2024-05-01T00:00:00.123Z"),
                  plain(n="1", t="2024-13-01T00:00:00Z"), plain(n="1", t="2024-05-01 00:00:00"), plain(n="01", t="x")]:
        assert _outcome(iso, given) == _outcome(LongWay("h", "n", "t", dict(iso.features)), given), given


def test_the_offline_flush_reads_records_as_python_would() -> None:
    """The flush parses pending records with Arrow's JSON reader (store._offline_table); row by row with Python only
    what Arrow refuses. Both make the same table of every kind of value, and the second takes what the first refuses."""
    import json

    from connectors.featurestore.local.store import _offline_table, _offline_table_by_row
    from connectors.featurestore.model import Collection, CollectionType, FeatureGroupDefinition, FeatureType

    definition = FeatureGroupDefinition(
        "g", "id", "t", {"id": FeatureType.STRING, "t": FeatureType.FRACTIONAL, "n": FeatureType.INTEGRAL,
                         "f": FeatureType.FRACTIONAL, "l": FeatureType.STRING, "v": FeatureType.FRACTIONAL},
        collections={"l": Collection(CollectionType.LIST), "v": Collection(CollectionType.VECTOR, 2)})
    records = [{"id": 'a\u00e9\U0001F600"\\', "t": 1714521600.123, "n": -(2**63), "f": 1e16, "l": ["x", "y\n"],
                "v": [0.1, 1e-300]},
               {"id": "b", "t": 0.0, "n": 2**63 - 1, "f": 5e-324}, {"id": "c", "t": 1.5},
               {"id": "d", "t": 2.0, "f": 0.30000000000000004, "l": []}]
    rows = [("g", r["t"], 1714521600.1234567 + i * 0.0005, i % 2, json.dumps(r)) for i, r in enumerate(records)]
    rows.append(("g", 3.0, -1.0000005, 1, "{}"))
    assert _offline_table(definition, 1765124056.987654, rows).equals(
        _offline_table_by_row(definition, 1765124056.987654, rows))
    assert _offline_table(definition, 1.0, rows).to_pylist()[0]["api_invocation_time"].microsecond == 123000
    lone_surrogate = [("g", 1.0, 1.0, 0, json.dumps({"id": "\ud800", "t": 1.0}))]
    with pytest.raises(ValueError):
        _offline_table(definition, 1.0, lone_surrogate)
