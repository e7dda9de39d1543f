"""SQL over the local offline store with DuckDB: each feature group is a view named after it.

The views read the Parquet files the local server writes (hive partitions year/month/day/hour become
string columns, as in the Glue tables SageMaker creates). A group with no files yet is an empty view with
the group's columns, so queries written before the first flush still run.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import duckdb

from connectors.featurestore.local.store import OFFLINE_DIR, ONLINE_DATABASE, offline_schema
from connectors.featurestore.model import FeatureGroupDefinition

class OfflineQueryError(RuntimeError):
    pass


def feature_groups(root: Path) -> list[FeatureGroupDefinition]:
    """The groups registered in the store in ``root``, read without a running server (SQLite read-only)."""
    database = root / ONLINE_DATABASE
    if not database.exists():
        return []
    connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT request FROM feature_groups ORDER BY name").fetchall()
    finally:
        connection.close()
    return [FeatureGroupDefinition.from_api(json.loads(request)) for (request,) in rows]


def connect(root: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per feature group of the store in ``root``."""
    connection = duckdb.connect()
    offline_root = root / OFFLINE_DIR
    for definition in feature_groups(root):
        files = offline_root / definition.name
        name = _quote(definition.name)
        if any(files.rglob("*.parquet")):
            pattern = str(files / "**" / "*.parquet").replace("'", "''")
            connection.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{pattern}', "
                "hive_partitioning = true, union_by_name = true, "
                "hive_types = {'year': VARCHAR, 'month': VARCHAR, 'day': VARCHAR, 'hour': VARCHAR})"
            )
        else:
            connection.from_arrow(offline_schema(definition).empty_table()).create_view(definition.name)
    return connection


def run_query(root: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(column names, rows) of ``sql`` over the offline store of the store in ``root``."""
    connection = connect(root)
    try:
        result = connection.execute(sql)
    except duckdb.Error as error:
        tables = ", ".join(d.name for d in feature_groups(root)) or "none yet"
        raise OfflineQueryError(f"{error}\nfeature groups you can query: {tables}") from None
    if result.description is None:
        return [], []
    columns = [column[0] for column in result.description]
    return columns, result.fetchall()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
