"""Collection types (List, Set, Vector) through boto3 against the real local server, as AWS defines them:
- developer guide, Collection types: https://docs.aws.amazon.com/sagemaker/latest/dg/feature-store-collection-types.html
  (InMemory online stores only; one element type per collection; a Set's elements unique; Vector elements
  Fractional, one Vector per group, dimension up to 8192; a collection as long as the record size allows);
- API reference: FeatureDefinition (CollectionType List | Set | Vector), CollectionConfig (a union: VectorConfig),
  VectorConfig (Dimension 1 to 8192), and the runtime's FeatureValue (ValueAsStringList, 0 to 358,400 items,
  "used when your CollectionType is a List, Set, or Vector"; ValueAsString "when your CollectionType is None"):
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_FeatureDefinition.html, API_CollectionConfig.html,
  API_VectorConfig.html, API_feature_store_FeatureValue.html.
Then the offline store (Parquet lists, DuckDB arrays under the Glue table's name), `chainfeat query` and
`chainfeat training-set` over it."""

from __future__ import annotations

import csv
import json

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from connectors.featurestore.local.offline import run_query
from connectors.featurestore.model import MAX_RECORD_BYTES, MAX_VALUE_LIST_ITEMS, MAX_VECTOR_DIMENSION
from job.local.data_dir import DataDir
from tests.conftest import boto3_kwargs
from tests.support import chainfeat
from tests.support.store_records import offline_rows

GROUP = "wallets"
T0 = 1_714_521_600.0
IN_MEMORY = {"EnableOnlineStore": True, "StorageType": "InMemory"}
DEFINITIONS = [
    {"FeatureName": "wallet", "FeatureType": "String"},
    {"FeatureName": "event_time", "FeatureType": "Fractional"},
    {"FeatureName": "inputs", "FeatureType": "String", "CollectionType": "List"},
    {"FeatureName": "blocks", "FeatureType": "Integral", "CollectionType": "Set"},
    {"FeatureName": "embedding", "FeatureType": "Fractional", "CollectionType": "Vector",
     "CollectionConfig": {"VectorConfig": {"Dimension": 3}}},
    {"FeatureName": "label", "FeatureType": "String"},
]


def create(control, definitions=DEFINITIONS, online=IN_MEMORY, name: str = GROUP) -> dict:
    control.create_feature_group(FeatureGroupName=name, RecordIdentifierFeatureName="wallet",
                                 EventTimeFeatureName="event_time", FeatureDefinitions=definitions,
                                 **({"OnlineStoreConfig": online} if online else {}),
                                 OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://bucket/features"}})
    return control.describe_feature_group(FeatureGroupName=name)


def record(wallet: str, event_time: float = T0, inputs=("a", "b", "a"), blocks=("7", "3", "7"),
           embedding=("0.5", "-1.25", "3.0"), label: str | None = "x") -> list[dict]:
    values = [{"FeatureName": "wallet", "ValueAsString": wallet},
              {"FeatureName": "event_time", "ValueAsString": repr(event_time)},
              {"FeatureName": "inputs", "ValueAsStringList": list(inputs)},
              {"FeatureName": "blocks", "ValueAsStringList": list(blocks)},
              {"FeatureName": "embedding", "ValueAsStringList": list(embedding)}]
    return values + ([{"FeatureName": "label", "ValueAsString": label}] if label is not None else [])


def as_dict(api_record: list[dict]) -> dict:
    return {item["FeatureName"]: item.get("ValueAsStringList", item.get("ValueAsString")) for item in api_record}


def refused(call, code: str, *fragments: str) -> None:
    with pytest.raises(ClientError) as raised:
        call()
    assert raised.value.response["Error"]["Code"] == code
    message = raised.value.response["Error"]["Message"]
    assert all(fragment in message for fragment in fragments), message


# ---- where collections are allowed, and how they are declared ----------------------------------------------

def test_an_in_memory_group_declares_list_set_and_vector_and_describes_them_back(control) -> None:
    described = create(control)
    assert described["FeatureDefinitions"] == DEFINITIONS
    assert described["OnlineStoreConfig"]["StorageType"] == "InMemory"


@pytest.mark.parametrize(("online", "storage"), [
    ({"EnableOnlineStore": True}, "Standard"),  # the default storage type
    ({"EnableOnlineStore": True, "StorageType": "Standard_V2"}, "Standard_V2"),
    (None, "no online store"),
], ids=["standard", "standard-v2", "offline-only"])
def test_collections_need_an_in_memory_online_store(control, online, storage) -> None:
    refused(lambda: create(control, online=online), "ValidationException", "Feature 'inputs'", "InMemory", storage)


@pytest.mark.parametrize(("definition", "fragments"), [
    ({"FeatureName": "v", "FeatureType": "String", "CollectionType": "Vector",
      "CollectionConfig": {"VectorConfig": {"Dimension": 2}}}, ("Fractional", "not String")),
    ({"FeatureName": "v", "FeatureType": "Fractional", "CollectionType": "Vector"}, ("Dimension", "None")),
    ({"FeatureName": "v", "FeatureType": "Fractional", "CollectionType": "List",
      "CollectionConfig": {"VectorConfig": {"Dimension": 2}}}, ("only for a Vector",)),
    ({"FeatureName": "v", "FeatureType": "String", "CollectionConfig": {"VectorConfig": {"Dimension": 2}}},
     ("no CollectionType",)),
], ids=["vector-of-strings", "vector-without-dimension", "list-with-vector-config", "config-without-type"])
def test_a_collection_declared_against_the_api_reference_is_refused(control, definition, fragments) -> None:
    refused(lambda: create(control, [*DEFINITIONS[:2], definition]), "ValidationException", "'v'", *fragments)


def test_the_vector_dimension_is_1_to_8192_and_a_group_has_one_vector(control) -> None:
    def vector(name: str, dimension: int) -> dict:
        return {"FeatureName": name, "FeatureType": "Fractional", "CollectionType": "Vector",
                "CollectionConfig": {"VectorConfig": {"Dimension": dimension}}}

    # botocore checks the model's range (min 1) itself; the server must refuse what a client sends unchecked
    unchecked = boto3.client("sagemaker", **boto3_kwargs(control.meta.endpoint_url),
                             config=Config(parameter_validation=False))
    for dimension in (0, MAX_VECTOR_DIMENSION + 1):
        refused(lambda d=dimension: create(unchecked, [*DEFINITIONS[:2], vector("v", d)], name=f"g{d}"),
                "ValidationException", "from 1 to 8192", str(dimension))
    assert create(control, [*DEFINITIONS[:2], vector("v", MAX_VECTOR_DIMENSION)], name="widest")[
        "FeatureDefinitions"][2]["CollectionConfig"] == {"VectorConfig": {"Dimension": 8192}}
    refused(lambda: create(control, [*DEFINITIONS[:2], vector("v", 2), vector("w", 2)], name="two"),
            "ValidationException", "only 1 Vector", "v, w")


@pytest.mark.parametrize("key", ["wallet", "event_time"])
def test_the_record_identifier_and_event_time_cannot_be_collections(control, key) -> None:
    definitions = [{**d, "CollectionType": "List"} if d["FeatureName"] == key else d for d in DEFINITIONS]
    refused(lambda: create(control, definitions), "ValidationException", f"'{key}'", "cannot be a collection")


def test_feature_additions_follow_the_same_rules(control, server) -> None:
    server.store.update_delay_s = 0  # applied at once: the test reads the result, not the wait
    create(control)
    create(control, DEFINITIONS[:2], online={"EnableOnlineStore": True, "StorageType": "Standard_V2"}, name="plain")
    tags = {"FeatureName": "tags", "FeatureType": "String", "CollectionType": "Set"}
    refused(lambda: control.update_feature_group(FeatureGroupName="plain", FeatureAdditions=[tags]),
            "ValidationException", "'tags'", "InMemory", "Standard_V2")
    second_vector = {"FeatureName": "other", "FeatureType": "Fractional", "CollectionType": "Vector",
                     "CollectionConfig": {"VectorConfig": {"Dimension": 2}}}
    refused(lambda: control.update_feature_group(FeatureGroupName=GROUP, FeatureAdditions=[second_vector]),
            "ValidationException", "only 1 Vector")
    control.update_feature_group(FeatureGroupName=GROUP, FeatureAdditions=[tags])
    described = control.describe_feature_group(FeatureGroupName=GROUP)
    assert described["LastUpdateStatus"]["Status"] == "Successful"
    assert described["FeatureDefinitions"] == [*DEFINITIONS, tags]


# ---- values: PutRecord, GetRecord, BatchGetRecord, BatchWriteRecord, UpdateRecord --------------------------

def test_collections_are_stored_and_served_as_value_lists(control, runtime) -> None:
    create(control)
    runtime.put_record(FeatureGroupName=GROUP, Record=record("w1"))
    got = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="w1")["Record"]
    assert as_dict(got) == {"wallet": "w1", "event_time": repr(T0),
                            "inputs": ["a", "b", "a"],  # a List keeps order and repeats
                            "blocks": ["7", "3"],  # a Set keeps each element once (the guide's ['a', 'b', 'a'])
                            "embedding": ["0.5", "-1.25", "3.0"], "label": "x"}
    assert [item for item in got if item["FeatureName"] == "inputs"] == [
        {"FeatureName": "inputs", "ValueAsStringList": ["a", "b", "a"]}]  # never ValueAsString for a collection

    some = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="w1", FeatureNames=["embedding"])
    assert some["Record"] == [{"FeatureName": "embedding", "ValueAsStringList": ["0.5", "-1.25", "3.0"]}]

    written = runtime.batch_write_record(Entries=[
        {"FeatureGroupName": GROUP, "Record": record("w2", inputs=(), blocks=("1",), label=None)},
        {"FeatureGroupName": GROUP, "Record": record("w3", embedding=("1", "2"))}])
    assert [error["Entry"]["Record"][0]["ValueAsString"] for error in written["Errors"]] == ["w3"]
    batch = runtime.batch_get_record(Identifiers=[{"FeatureGroupName": GROUP,
                                                   "RecordIdentifiersValueAsString": ["w1", "w2", "w3"]}])
    assert {r["RecordIdentifierValueAsString"]: as_dict(r["Record"])["inputs"] for r in batch["Records"]} == {
        "w1": ["a", "b", "a"], "w2": []}  # an empty List is a value (0 items is the minimum)

    runtime.update_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="w2",
                          Features=[{"FeatureName": "blocks", "ValueAsStringList": ["9", "9", "8"]}])
    assert as_dict(runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="w2")["Record"])[
        "blocks"] == ["9", "8"]


@pytest.mark.parametrize(("change", "fragments"), [
    ({"inputs": {"ValueAsString": "a"}}, ("'inputs' is a List", "ValueAsStringList, not ValueAsString")),
    ({"label": {"ValueAsStringList": ["x"]}}, ("'label' is not a collection", "ValueAsString, not")),
    ({"embedding": {"ValueAsStringList": ["1", "2", "3", "4"]}}, ("Vector of dimension 3", "4 elements")),
    ({"blocks": {"ValueAsStringList": ["1", "two"]}}, ("'blocks[1]' is Integral", "'two'")),
    ({"embedding": {"ValueAsStringList": ["1", "nan", "2"]}}, ("'embedding[1]'", "not a finite number")),
    ({"inputs": {"ValueAsStringList": ["a", None]}}, ("'inputs' element 1", "cannot hold nulls")),
    ({"inputs": {}}, ("'inputs' has no ValueAsStringList",)),
], ids=["list-as-string", "scalar-as-list", "vector-length", "element-type", "element-nan", "null-element",
        "no-value"])
def test_a_value_that_does_not_fit_its_collection_is_refused(control, server, change, fragments) -> None:
    create(control)
    # parameter_validation off: botocore would refuse a None element before sending it; AWS refuses it too
    unchecked = boto3.client("sagemaker-featurestore-runtime", **boto3_kwargs(server.url),
                             config=Config(parameter_validation=False))
    (name, value), = change.items()
    bad = [{"FeatureName": item["FeatureName"], **value} if item["FeatureName"] == name else item
           for item in record("w1")]
    refused(lambda: unchecked.put_record(FeatureGroupName=GROUP, Record=bad), "ValidationError", *fragments)
    assert "Record" not in unchecked.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="w1")


def test_a_collection_is_as_long_as_the_record_size_allows(control, runtime) -> None:
    create(control)
    element = "x" * 1000
    fits = (MAX_RECORD_BYTES - 2000) // len(element)
    runtime.put_record(FeatureGroupName=GROUP, Record=record("long", inputs=[element] * fits))
    assert len(as_dict(runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="long")["Record"])[
        "inputs"]) == fits
    refused(lambda: runtime.put_record(FeatureGroupName=GROUP, Record=record("over", inputs=[element] * (fits + 3))),
            "ValidationError", "exceeds the maximum record size")
    # empty elements weigh nothing, but ValueAsStringList holds at most 358,400 items
    refused(lambda: runtime.put_record(FeatureGroupName=GROUP,
                                       Record=record("many", inputs=[""] * (MAX_VALUE_LIST_ITEMS + 1))),
            "ValidationError", f"{MAX_VALUE_LIST_ITEMS + 1} items", str(MAX_VALUE_LIST_ITEMS))


# ---- the offline store, `chainfeat query` and `chainfeat training-set` ----------------------------------

@pytest.mark.slow  # the CLI as a user runs it, in subprocesses
def test_collections_go_offline_as_arrays_readable_by_query_and_training_sets(control, runtime, server, data_dir,
                                                                           cli_env, tmp_path) -> None:
    table = create(control)["OfflineStoreConfig"]["DataCatalogConfig"]["TableName"]
    runtime.put_record(FeatureGroupName=GROUP, Record=record("w1"))
    runtime.put_record(FeatureGroupName=GROUP, Record=record("w1", T0 + 60, inputs=("c",), label="later"))
    runtime.put_record(FeatureGroupName=GROUP, Record=record("w2", inputs=(), blocks=(), label=None))
    server.store.flush_offline()

    files = sorted((DataDir(data_dir).featurestore / "offline" / GROUP).rglob("*.parquet"))
    schema = pq.read_schema(files[0])
    assert (schema.field("inputs").type, schema.field("blocks").type, schema.field("embedding").type) == (
        pa.list_(pa.string()), pa.list_(pa.int64()), pa.list_(pa.float64()))
    assert [(row["wallet"], row["inputs"], row["blocks"]) for row in offline_rows(data_dir, GROUP)] == [
        ("w1", ["a", "b", "a"], [7, 3]), ("w1", ["c"], [7, 3]), ("w2", [], [])]  # every write, typed

    sql = (f'SELECT wallet, inputs, blocks, embedding, embedding[1], len(inputs) FROM "sagemaker_featurestore"."{table}" '
           "WHERE contains(inputs, 'a') ORDER BY event_time")
    assert run_query(DataDir(data_dir).featurestore, sql)[1] == [("w1", ["a", "b", "a"], [7, 3], [0.5, -1.25, 3.0],
                                                                   0.5, 3)]  # 1-based, as in Athena
    server.stop()  # the CLI reads the files itself
    result = chainfeat(cli_env, "query", "--format", "json", sql)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["embedding"] == [0.5, -1.25, 3.0]

    labels = tmp_path / "labels.csv"
    labels.write_text("wallet,label_time\nw1,1714521630\nw1,1714521700\nw2,1714521700\n")
    parquet_out, csv_out = tmp_path / "train.parquet", tmp_path / "train.csv"
    for output in (parquet_out, csv_out):
        result = chainfeat(cli_env, "training-set", "--labels", str(labels), "--group", GROUP, "--output", str(output))
        assert result.returncode == 0, result.stderr
    trained = pq.read_table(parquet_out)
    assert trained.schema.field(f"{GROUP}__embedding").type == pa.list_(pa.float64())
    assert sorted((row["label_time"], row["wallet"], row[f"{GROUP}__inputs"], row[f"{GROUP}__blocks"])
                  for row in trained.to_pylist()) == [
        (1714521630, "w1", ["a", "b", "a"], [7, 3]), (1714521700, "w1", ["c"], [7, 3]), (1714521700, "w2", [], [])]
    with csv_out.open() as handle:  # CSV has no arrays: JSON arrays in their place
        assert sorted((row["wallet"], json.loads(row[f"{GROUP}__inputs"])) for row in csv.DictReader(handle)) == [
            ("w1", ["a", "b", "a"]), ("w1", ["c"]), ("w2", [])]
