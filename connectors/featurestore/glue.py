"""How SQL names a feature group's offline store: the Glue table DescribeFeatureGroup gives
(OfflineStoreConfig.DataCatalogConfig), and double-quoted identifiers, the standard SQL that DuckDB, Athena
(Trino) and Flink read alike. The local store's DuckDB views, `chainfeat training-set` and the notebook's
Athena queries all name tables this way. (Shipped to SageMaker Studio with the notebook: boto3-free, no
third-party imports.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def quote_identifier(*parts: str) -> str:
    """A (qualified) SQL identifier: every part in double quotes, its own double quotes doubled."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def data_catalog(description: Mapping[str, Any]) -> dict[str, str] | None:
    """The group's DataCatalogConfig (Catalog, Database, TableName), if it has an offline store catalogued."""
    return (description.get("OfflineStoreConfig") or {}).get("DataCatalogConfig") or None


def glue_table_sql(description: Mapping[str, Any]) -> str:
    """``"Catalog"."Database"."TableName"`` of the group's offline store, as Athena (and `chainfeat query`) reads it."""
    catalog = data_catalog(description)
    if not catalog:
        raise ValueError(f"feature group {description.get('FeatureGroupName')} has no offline store in the Glue "
                         "catalog (DescribeFeatureGroup shows no OfflineStoreConfig.DataCatalogConfig)")
    return quote_identifier(catalog["Catalog"], catalog["Database"], catalog["TableName"])
