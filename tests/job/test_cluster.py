"""The packaged job on a real standalone Flink cluster (pyflink's bin/ scripts), submitted with
`chainfeat submit --flink-url`, watched with `chainfeat status`."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from job.config import DEFAULT_PROPERTIES
from tests.conftest import CHAINFEAT
from tests.support.flink_cluster import StandaloneCluster
from tests.reference import expected_results
from tests.support import GROUP, online_rows, publish, reference_input, scenario

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path):
    running = StandaloneCluster(tmp_path / "cluster").start()
    yield running
    running.stop()


def test_submit_runs_the_zip_on_a_standalone_cluster(cluster, app_zip, tmp_path, server, cli_env) -> None:  # noqa: F811
    zip_path, _summary = app_zip
    data_dir = tmp_path / "cluster-data"
    polls = scenario()
    publish(data_dir, polls)
    groups = json.loads(DEFAULT_PROPERTIES.read_text())
    for group in groups:
        if group["PropertyGroupId"] == "Source":
            group["PropertyMap"]["monitor.interval.s"] = ""  # bounded: the job finishes on its own
        if group["PropertyGroupId"] == "FeatureStore":
            group["PropertyMap"]["endpoint.url"] = server.url
    properties = tmp_path / "cluster-properties.json"
    properties.write_text(json.dumps(groups))

    submitted = subprocess.run(
        [*CHAINFEAT, "submit", "--flink-url", cluster.url, "--zip", str(zip_path), "--properties", str(properties),
         "--data-dir", str(data_dir), "--format", "json"],
        env=cli_env, capture_output=True, text=True, timeout=600,
    )
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    job_id = json.loads(submitted.stdout)["job_id"]

    deadline = time.monotonic() + 180
    while True:
        status = subprocess.run([*CHAINFEAT, "status", "--flink-url", cluster.url, "--job", job_id, "--format", "json"],
                                env=cli_env, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        if report["state"] in ("FINISHED", "FAILED", "CANCELED") or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert report["state"] == "FINISHED", report
    assert report["job_id"] == job_id and report["operators"]
    assert sum(op["records_in"] for op in report["operators"]) > 0
    assert online_rows(server.url, GROUP) == expected_results(reference_input(polls)).features

    table = subprocess.run([*CHAINFEAT, "status", "--flink-url", cluster.url], env=cli_env, capture_output=True,
                           text=True, timeout=60)
    assert table.returncode == 0 and job_id in table.stdout and "records_in" in table.stdout
