"""The notebook's code cells, run in order against a real local feature store with data in it."""

from __future__ import annotations

import json

from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig
from tests.conftest import REPO_ROOT
from tests.support.feature_rows import DEFINITION, GROUP, feature_rows

NOTEBOOK = REPO_ROOT / "notebooks" / "read_feature_store.ipynb"


def test_notebook_reads_online_and_offline(server, data_dir, monkeypatch) -> None:
    rows = feature_rows(90)
    client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url))
    client.ensure_feature_group(DEFINITION)
    client.put_records(GROUP, rows)
    server.store.flush_offline()
    monkeypatch.setenv("CHAINFEAT_FEATURESTORE_URL", server.url)
    monkeypatch.setenv("CHAINFEAT_DATA_DIR", str(data_dir))

    namespace: dict = {}
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}:{cell['id']}", "exec"), namespace)

    assert namespace["latest"] == rows[-1]
    assert namespace["hour"] == rows[-60:]
    assert [row[0] for row in namespace["rows"]] == [row["tx_minute"] for row in reversed(rows[-10:])]
