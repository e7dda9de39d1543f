"""SQL over the local offline store with DuckDB, under the names Athena gives it.

Each feature group is a view named after the group, and each Glue table its offline store is catalogued as
(DescribeFeatureGroup's OfflineStoreConfig.DataCatalogConfig) is a view under that name too, in its database
and catalog: ``"sagemaker_featurestore"."tx_minute_features_1714521600"`` and
``"AwsDataCatalog"."sagemaker_featurestore"."tx_minute_features_1714521600"`` work as in Athena, so a query
written for the offline store on AWS runs here unchanged. As on AWS, a deleted group's table stays.

The views read the Parquet files the local server writes (hive partitions year/month/day/hour become
string columns, as in the Glue tables SageMaker creates). Every view has the group's columns whatever the
files hold: a group with no files yet, or a feature added after the files were written, reads as nulls.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from connectors.featurestore.glue import data_catalog, quote_identifier
from connectors.featurestore.local.groups import DATA_CATALOG
from connectors.featurestore.local.store import OFFLINE_DIR, ONLINE_DATABASE, offline_schema
from connectors.featurestore.model import FeatureGroupDefinition

PARTITION_COLUMNS = ("year", "month", "day", "hour")
_DUCKDB_TYPES = {pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.string(): "VARCHAR", pa.bool_(): "BOOLEAN",
                 pa.timestamp("ms"): "TIMESTAMP"}


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type of an offline column: a collection feature's list as an array of its element type."""
    if pa.types.is_list(arrow_type):
        return duckdb_type(arrow_type.value_type) + "[]"
    return _DUCKDB_TYPES[arrow_type]


class OfflineQueryError(RuntimeError):
    pass


def _registry(root: Path, sql: str) -> list[tuple]:
    """Rows of the store's registry in ``root``, read without a running server (SQLite read-only)."""
    database = root / ONLINE_DATABASE
    if not database.exists():
        return []
    connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return connection.execute(sql).fetchall()
    except sqlite3.OperationalError:  # a store from before that table existed (the server adds it)
        return []
    finally:
        connection.close()


def group_descriptions(root: Path) -> dict[str, dict[str, Any]]:
    """Each group registered in the store in ``root``, by name, as DescribeFeatureGroup reports it (its
    FeatureDefinitions, and OfflineStoreConfig.DataCatalogConfig: the Glue table Athena knows it by)."""
    rows = _registry(root, "SELECT name, request FROM feature_groups ORDER BY name")
    return {name: json.loads(request) for name, request in rows}


def feature_groups(root: Path) -> list[FeatureGroupDefinition]:
    """The groups registered in the store in ``root``."""
    return [FeatureGroupDefinition.from_api(config) for config in group_descriptions(root).values()]


def catalog_tables(root: Path) -> list[tuple[str, str, str, str, FeatureGroupDefinition]]:
    """(catalog, database, table, feature group, definition) of every Glue table of the store in ``root``."""
    rows = _registry(root, "SELECT database, table_name, feature_group, definition FROM catalog_tables "
                           "ORDER BY database, table_name")
    tables = []
    for database, table, group, definition in rows:
        config = json.loads(definition)
        catalog = (data_catalog(config) or {}).get("Catalog", DATA_CATALOG)
        tables.append((catalog, database, table, group, FeatureGroupDefinition.from_api(config)))
    return tables


def connect(root: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per feature group and per Glue table of the store in ``root``."""
    connection = duckdb.connect()
    tables = catalog_tables(root)
    catalogs = sorted({catalog.lower() for catalog, *_ in tables} | {DATA_CATALOG.lower()})
    for catalog in catalogs:
        connection.execute(f"ATTACH ':memory:' AS {quote_identifier(catalog)}")
    connection.execute(f"USE {quote_identifier(DATA_CATALOG.lower())}")  # plain and two-part names resolve in it
    offline_root = root / OFFLINE_DIR
    for catalog, database, table, group, definition in tables:
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(catalog.lower(), database)}")
        connection.execute(f"CREATE VIEW {quote_identifier(catalog.lower(), database, table)} AS "
                           + _select(definition, offline_root / group))
    for definition in feature_groups(root):
        connection.execute(f"CREATE VIEW main.{quote_identifier(definition.name)} AS "
                           + _select(definition, offline_root / definition.name))
    return connection


def _select(definition: FeatureGroupDefinition, files: Path) -> str:
    """The group's columns (features, the offline store's own, the partitions) over its Parquet files."""
    columns = [f"CAST(NULL AS {duckdb_type(field.type)}) AS {quote_identifier(field.name)}"
               for field in offline_schema(definition)]
    columns += [f"CAST(NULL AS VARCHAR) AS {quote_identifier(name)}" for name in PARTITION_COLUMNS]
    empty = f"SELECT {', '.join(columns)} WHERE false"
    if not any(files.rglob("*.parquet")):
        return empty
    pattern = str(files / "**" / "*.parquet").replace("'", "''")
    return (f"{empty} UNION ALL BY NAME SELECT * FROM read_parquet('{pattern}', hive_partitioning = true, "
            "union_by_name = true, hive_types = {'year': VARCHAR, 'month': VARCHAR, 'day': VARCHAR, 'hour': VARCHAR})")


def offline_windows(root: Path, definition: FeatureGroupDefinition) -> list[tuple[str, float]]:
    """Every (record identifier as text, event time) the offline store of ``root`` holds for a group, once each."""
    identifier, event_time = quote_identifier(definition.record_identifier), quote_identifier(definition.event_time_feature)
    connection = connect(root)
    try:
        rows = connection.execute(f"SELECT DISTINCT CAST({identifier} AS VARCHAR), CAST({event_time} AS DOUBLE) "
                                  f"FROM main.{quote_identifier(definition.name)} WHERE NOT is_deleted").fetchall()
    finally:
        connection.close()
    return [(key, moment) for key, moment in rows]


def run_query(root: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(column names, rows) of ``sql`` over the offline store of the store in ``root``."""
    connection = connect(root)
    try:
        result = connection.execute(sql)
    except duckdb.Error as error:
        groups = ", ".join(d.name for d in feature_groups(root)) or "none yet"
        athena = ", ".join(f'"{database}"."{table}"' for _catalog, database, table, *_ in catalog_tables(root))
        raise OfflineQueryError(f"{error}\nfeature groups you can query: {groups}"
                                + (f"; as Athena names them: {athena}" if athena else "")) from None
    if result.description is None:
        return [], []
    columns = [column[0] for column in result.description]
    return columns, result.fetchall()

