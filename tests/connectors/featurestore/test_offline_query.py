"""`chainfeat query` takes the SQL users run in Athena against the offline store, under the names
DescribeFeatureGroup gives (DataCatalogConfig), over the real local store's Parquet."""

from __future__ import annotations

import json

from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig
from connectors.featurestore.local.offline import run_query
from connectors.featurestore.model import FeatureGroupDefinition, FeatureType
from job.local.data_dir import DataDir
from tests.support import chainfeat
from tests.support.feature_rows import DEFINITION, GROUP, feature_rows

SEED_QUERY = 'SELECT * FROM "sagemaker_featurestore"."{table}" ORDER BY tx_minute DESC LIMIT 100'


def test_the_demos_athena_query_runs_unchanged(server, data_dir, cli_env) -> None:
    client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url))
    client.ensure_feature_group(DEFINITION)
    rows = feature_rows(150)
    client.put_records(GROUP, rows)
    server.store.flush_offline()
    catalog = client.control.describe_feature_group(FeatureGroupName=GROUP)["OfflineStoreConfig"]["DataCatalogConfig"]
    assert (catalog["Catalog"], catalog["Database"]) == ("AwsDataCatalog", "sagemaker_featurestore")

    store = DataDir(data_dir).featurestore
    columns, found = run_query(store, SEED_QUERY.format(table=catalog["TableName"]))
    assert columns == [*DEFINITION.features, "write_time", "api_invocation_time", "is_deleted",
                       "year", "month", "day", "hour"]  # the Glue table's columns, partitions last
    newest = [row["tx_minute"] for row in reversed(rows)][:100]
    assert [row[0] for row in found] == newest
    qualified = f'SELECT count(*) FROM "AwsDataCatalog"."sagemaker_featurestore"."{catalog["TableName"]}"'
    assert run_query(store, qualified)[1] == [(150,)]

    server.stop()  # the CLI reads the files itself
    result = chainfeat(cli_env, "query", "--format", "json", SEED_QUERY.format(table=catalog["TableName"]))
    assert result.returncode == 0, result.stderr
    assert [row["tx_minute"] for row in json.loads(result.stdout)] == newest


def test_a_feature_added_later_reads_as_null_in_old_rows_and_a_deleted_groups_table_stays(server, data_dir) -> None:
    client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url))
    client.ensure_feature_group(DEFINITION)
    client.put_records(GROUP, feature_rows(2))
    server.store.flush_offline()
    table = client.control.describe_feature_group(FeatureGroupName=GROUP)["OfflineStoreConfig"]["DataCatalogConfig"][
        "TableName"]
    client.ensure_feature_group(FeatureGroupDefinition(GROUP, "tx_minute", "event_time",
                                                       {**DEFINITION.features, "max_fee": FeatureType.INTEGRAL}))
    store = DataDir(data_dir).featurestore
    sql = f'SELECT tx_minute, max_fee FROM "sagemaker_featurestore"."{table}" ORDER BY 1'
    assert run_query(store, sql)[1] == [("2024-05-01 00:00:00", None), ("2024-05-01 00:01:00", None)]
    client.put_records(GROUP, [{**feature_rows(3)[2], "max_fee": 9}])
    client.control.delete_feature_group(FeatureGroupName=GROUP)  # flushes; the Glue table outlives the group
    assert run_query(store, sql)[1][-1] == ("2024-05-01 00:02:00", 9)
