"""The notebook's offline reads: a feature group's last hour from the offline store, with DuckDB over the local
store or with Athena on AWS, chosen by configuration, not by code.

Configuration (``NotebookSettings.load``): a JSON file ``chainfeat-notebook.json`` next to the notebook (the
Studio stack writes one: ``{"offline": "athena", "athena_workgroup": ..., "region": ...}``), or the file
``CHAINFEAT_NOTEBOOK_CONFIG`` names; environment variables override it: ``CHAINFEAT_OFFLINE`` (duckdb | athena;
default duckdb when ``CHAINFEAT_FEATURESTORE_URL`` points at a local store, else athena),
``CHAINFEAT_ATHENA_WORKGROUP``, ``CHAINFEAT_FEATURE_GROUP``, ``CHAINFEAT_FEATURESTORE_URL``,
``CHAINFEAT_DATA_DIR``, ``AWS_REGION``. Athena's endpoint can be moved like any boto3 one
(``AWS_ENDPOINT_URL_ATHENA``).

Shipped to SageMaker Studio with the notebook (infra/stacks/studio.py), whose images have boto3, pandas and
matplotlib but not necessarily DuckDB: the Athena engine needs boto3 and the standard library only; DuckDB
and the local store's modules are imported by the local engine alone.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from string import Template
from typing import Any

from connectors import DEFAULT_REGION
from connectors.featurestore.glue import glue_table_sql, quote_identifier

ENGINES = ("duckdb", "athena")
CONFIG_FILE = "chainfeat-notebook.json"
LAST_HOUR_SQL = Path(__file__).with_name("last_hour.sql")
HOUR_S = 3600.0
_ENVIRONMENT = {  # setting -> environment variable
    "feature_group": "CHAINFEAT_FEATURE_GROUP", "featurestore_url": "CHAINFEAT_FEATURESTORE_URL",
    "data_dir": "CHAINFEAT_DATA_DIR", "offline": "CHAINFEAT_OFFLINE", "athena_workgroup": "CHAINFEAT_ATHENA_WORKGROUP",
    "region": "AWS_REGION",
}
# Athena's numeric and boolean types; every other value (varchar, timestamp, date, ...) stays text.
_ATHENA_TYPES: dict[str, Callable[[str], Any]] = {
    **dict.fromkeys(("tinyint", "smallint", "integer", "int", "bigint"), int),
    **dict.fromkeys(("double", "float", "real", "decimal"), float),
    "boolean": lambda text: text.lower() == "true",
}


class OfflineReadError(RuntimeError):
    """The offline store could not be read; the message says why and what to set."""


@dataclass(frozen=True)
class NotebookSettings:
    feature_group: str = "tx_minute_features"
    featurestore_url: str | None = None  # None: Amazon SageMaker Feature Store
    data_dir: str = ".chainfeat"  # the local store's data dir (the duckdb engine)
    offline: str | None = None  # duckdb | athena; None: duckdb with a local feature store, else athena
    athena_workgroup: str | None = None  # the Studio stack's workgroup, <prefix>-studio
    region: str = DEFAULT_REGION

    @classmethod
    def load(cls, environ: Mapping[str, str] = os.environ, directory: Path | None = None) -> NotebookSettings:
        """The settings file (if any), then the environment over it."""
        path = Path(environ.get("CHAINFEAT_NOTEBOOK_CONFIG") or (directory or Path.cwd()) / CONFIG_FILE)
        values: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise OfflineReadError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values.update({name: environ[variable] for name, variable in _ENVIRONMENT.items() if environ.get(variable)})
        settings = cls(**values)
        offline = settings.offline or ("duckdb" if settings.featurestore_url else "athena")
        if offline not in ENGINES:
            raise OfflineReadError(f"CHAINFEAT_OFFLINE (or \"offline\" in {CONFIG_FILE}) must be duckdb or athena, "
                                   f"not {offline!r}")
        if offline == "athena" and not settings.athena_workgroup:
            raise OfflineReadError("the athena engine needs a workgroup: set CHAINFEAT_ATHENA_WORKGROUP (or "
                                   f"\"athena_workgroup\" in {CONFIG_FILE}) to the Studio stack's, <prefix>-studio")
        return cls(**{**values, "offline": offline})


def last_hour_sql(description: Mapping[str, Any], end_event_time: float) -> str:
    """The offline store's hour up to ``end_event_time`` (epoch seconds), on the group's Glue table."""
    return Template(LAST_HOUR_SQL.read_text()).substitute(
        table=glue_table_sql(description),
        record_identifier=quote_identifier(description["RecordIdentifierFeatureName"]),
        event_time=quote_identifier(description["EventTimeFeatureName"]),
        start=repr(float(end_event_time) - HOUR_S), end=repr(float(end_event_time)),
    )


def last_hour(settings: NotebookSettings, description: Mapping[str, Any], end_event_time: float) -> list[dict]:
    """The group's offline rows of the hour up to ``end_event_time``, oldest first, with the configured engine."""
    sql = last_hour_sql(description, end_event_time)
    if settings.offline == "duckdb":
        return duckdb_rows(Path(settings.data_dir), sql)
    import boto3

    return athena_rows(boto3.client("athena", region_name=settings.region), sql, settings.athena_workgroup or "")


def duckdb_rows(data_dir: Path, sql: str) -> list[dict]:
    """``sql`` with DuckDB over the local offline store of ``data_dir`` (Athena's table names work there)."""
    from connectors.featurestore.local import STORE_DIR
    from connectors.featurestore.local.offline import run_query  # duckdb: only for the local engine

    columns, rows = run_query(Path(data_dir) / STORE_DIR, sql)
    return [dict(zip(columns, row)) for row in rows]


def athena_rows(client: Any, sql: str, workgroup: str, timeout_s: float = 600.0,
                sleep: Callable[[float], None] = time.sleep) -> list[dict]:
    """``sql`` run by Athena in ``workgroup`` (its result location and encryption are the workgroup's), as rows."""
    execution_id = client.start_query_execution(QueryString=sql, WorkGroup=workgroup)["QueryExecutionId"]
    deadline, delay = time.monotonic() + timeout_s, 0.2
    while True:
        status = client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]
        if status["State"] == "SUCCEEDED":
            break
        if status["State"] in ("FAILED", "CANCELLED"):
            raise OfflineReadError(f"Athena query {execution_id} in workgroup {workgroup} {status['State']}: "
                                   f"{status.get('StateChangeReason', 'no reason given')}")
        if time.monotonic() > deadline:
            client.stop_query_execution(QueryExecutionId=execution_id)
            raise OfflineReadError(f"Athena query {execution_id} still {status['State']} after {timeout_s:g}s; stopped it")
        sleep(delay)
        delay = min(delay * 2, 5.0)
    rows: list[dict] = []
    pages = client.get_paginator("get_query_results").paginate(QueryExecutionId=execution_id)
    for number, page in enumerate(pages):
        columns = [(column["Name"], _ATHENA_TYPES.get(column["Type"].lower(), str))
                   for column in page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
        data = page["ResultSet"]["Rows"][1 if number == 0 else 0:]  # a SELECT's first row holds the column names
        for row in data:
            values = [cell.get("VarCharValue") for cell in row["Data"]]  # a null has no VarCharValue
            rows.append({name: None if value is None else parse(value)
                         for (name, parse), value in zip(columns, values)})
    return rows
