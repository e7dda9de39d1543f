"""The notebook's code cells, run in order against a real local feature store with data in it: offline through
DuckDB (the local configuration), and through Athena (moto's) as configured in SageMaker Studio."""

from __future__ import annotations

import json
import urllib.request

import boto3
import pytest

from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig
from connectors.featurestore.local.offline import run_query
from job.local.data_dir import DataDir
from tests.conftest import REPO_ROOT
from tests.support.feature_rows import DEFINITION, GROUP, feature_rows

NOTEBOOK = REPO_ROOT / "notebooks" / "read_feature_store.ipynb"
FEATURES = ["total_nb_trx_1min", "total_fee_1min", "avg_fee_1min"]
WORKGROUP = "chainfeat-studio"  # infra/stacks/studio.py: f"{prefix}-studio" with the default prefix


@pytest.fixture
def written(server, data_dir, monkeypatch) -> list[dict]:
    """90 minutes of the shipped group's rows in the local store, online and offline; the notebook pointed at it."""
    rows = feature_rows(90)
    client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url))
    client.ensure_feature_group(DEFINITION)
    client.put_records(GROUP, rows)
    server.store.flush_offline()
    for variable in ("CHAINFEAT_OFFLINE", "CHAINFEAT_ATHENA_WORKGROUP", "CHAINFEAT_NOTEBOOK_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CHAINFEAT_FEATURESTORE_URL", server.url)
    monkeypatch.setenv("CHAINFEAT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return rows


def run_notebook() -> dict:
    import matplotlib.pyplot as plt

    namespace: dict = {}
    try:
        for cell in json.loads(NOTEBOOK.read_text())["cells"]:
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}:{cell['id']}", "exec"), namespace)
        namespace["plotted"] = {axis.get_ylabel(): list(axis.lines[0].get_ydata())
                                for axis in namespace["figure"].axes}
    finally:
        plt.close("all")
    return namespace


def check_online_and_plot(namespace: dict, rows: list[dict]) -> None:
    assert namespace["latest"] == rows[-1]
    assert namespace["hour"] == rows[-60:]
    assert namespace["plotted"] == {feature: [row[feature] for row in rows[-60:]] for feature in FEATURES}


def test_notebook_reads_online_and_offline_with_duckdb(written) -> None:
    namespace = run_notebook()
    assert namespace["settings"].offline == "duckdb"  # a local endpoint: DuckDB by default
    check_online_and_plot(namespace, written)
    offline = namespace["offline"]
    assert offline[list(DEFINITION.features)].to_dict("records") == written[-60:]  # the hour up to the newest row


def athena_answer(rows: list[dict]) -> dict:
    """GetQueryResults as Athena gives it for these rows: text cells, a header row first, the types aside."""
    types = {"tx_minute": "varchar", "event_time": "double", "total_nb_trx_1min": "bigint",
             "total_fee_1min": "bigint", "avg_fee_1min": "double", "is_deleted": "boolean"}
    text = [{"Data": [{"VarCharValue": name} for name in types]}]
    text += [{"Data": [{"VarCharValue": "false" if name == "is_deleted" else repr(row[name]) if name != "tx_minute"
                        else row[name]} for name in types]} for row in rows]
    return {"rows": text, "column_info": [{"Name": name, "Label": name, "Type": kind, "Nullable": "UNKNOWN",
                                           "CatalogName": "hive", "SchemaName": "", "TableName": "",
                                           "Precision": 0, "Scale": 0, "CaseSensitive": kind == "varchar"}
                                          for name, kind in types.items()]}


def test_notebook_reads_offline_with_athena_in_the_studio_workgroup(written, server, data_dir, moto_url, tmp_path,
                                                                    monkeypatch) -> None:
    # As in Studio: the settings file the Studio stack writes next to the notebook chooses Athena.
    settings_file = tmp_path / "chainfeat-notebook.json"
    settings_file.write_text(json.dumps({"offline": "athena", "athena_workgroup": WORKGROUP, "region": "us-east-1"}))
    monkeypatch.setenv("CHAINFEAT_NOTEBOOK_CONFIG", str(settings_file))
    monkeypatch.setenv("AWS_ENDPOINT_URL_ATHENA", moto_url)
    for variable, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                            ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv("AWS_REGION", raising=False)
    athena = boto3.client("athena", region_name="us-east-1", endpoint_url=moto_url)
    if WORKGROUP not in [group["Name"] for group in athena.list_work_groups()["WorkGroups"]]:
        athena.create_work_group(Name=WORKGROUP, Configuration={
            "ResultConfiguration": {"OutputLocation": "s3://athena-results/athena/"},
            "EnforceWorkGroupConfiguration": True})
    before = set(athena.list_query_executions(WorkGroup=WORKGROUP)["QueryExecutionIds"])
    # moto runs no SQL: it answers the next query with what is queued here, the hour as Athena would send it.
    queued = json.dumps({"region": "us-east-1", "results": [athena_answer(written[-60:])]}).encode()
    request = urllib.request.Request(f"{moto_url}/moto-api/static/athena/query-results", data=queued,
                                     headers={"Content-Type": "application/json"}, method="POST")
    assert urllib.request.urlopen(request, timeout=10).status == 201

    namespace = run_notebook()

    assert namespace["settings"].offline == "athena"
    check_online_and_plot(namespace, written)
    assert namespace["offline"][list(DEFINITION.features)].to_dict("records") == written[-60:]  # typed back
    # What the notebook sent: one query, in the Studio workgroup, on the Glue table DescribeFeatureGroup names.
    (execution_id,) = set(athena.list_query_executions(WorkGroup=WORKGROUP)["QueryExecutionIds"]) - before
    execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
    assert execution["WorkGroup"] == WORKGROUP
    catalog = FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url)).description(GROUP)[
        "OfflineStoreConfig"]["DataCatalogConfig"]
    table = f'"{catalog["Catalog"]}"."{catalog["Database"]}"."{catalog["TableName"]}"'
    assert table in execution["Query"] and f'"{GROUP}"' not in execution["Query"]
    # ... and that statement, unchanged, reads exactly that hour from the real offline store (Athena's names).
    columns, found = run_query(DataDir(data_dir).featurestore, execution["Query"])
    assert [dict(zip(columns, row))["tx_minute"] for row in found] == [row["tx_minute"] for row in written[-60:]]
