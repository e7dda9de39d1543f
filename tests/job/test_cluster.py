"""The packaged job on a real standalone Flink cluster (pyflink's bin/ scripts), submitted with
`chainfeat submit --flink-url`, watched with `chainfeat status`; a backfill run there with
`chainfeat backfill --flink-url`."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from job.flow.config import DEFAULT_PROPERTIES
from tests.conftest import CHAINFEAT
from tests.reference import expected_results
from tests.support import GROUP, online_rows, publish, reference_input, scenario
from tests.support.example_features import store_state
from tests.support.flink_cluster import StandaloneCluster

# One test worker takes the whole module ("make test" runs them in parallel): the module's standalone cluster is started once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("standalone-cluster")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = StandaloneCluster(tmp_path_factory.mktemp("cluster")).start()
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


def test_backfill_runs_the_zip_on_a_standalone_cluster(cluster, app_zip, tmp_path, data_dir, server, cli_env) -> None:  # noqa: F811
    """`chainfeat backfill --flink-url`: the zip's entry point builds the backfill from the properties' Backfill group
    and the cluster runs it; the summary (read from the report the cluster's job wrote), the online rows and the
    offline store equal those of the same backfill on a local MiniCluster."""
    zip_path, _summary = app_zip
    archived = tmp_path / "archived"
    publish(archived, scenario())  # the spool: its polls under date=/hour=, a malformed page among them
    volatile = ("seconds", "tx_per_s", "timeline_s", "flink", "job_id", "dead_letter_dir", "data_dir")

    on_cluster = subprocess.run(
        [*CHAINFEAT, "backfill", "--flink-url", cluster.url, "--zip", str(zip_path), "--archive", str(archived / "spool"),
         "--data-dir", str(tmp_path / "cluster-backfill"), "--endpoint-url", server.url, "--format", "json"],
        env=cli_env, capture_output=True, text=True, timeout=600)
    assert on_cluster.returncode == 0, on_cluster.stderr[-3000:]
    summary = json.loads(on_cluster.stdout)
    assert summary["flink"] == cluster.url
    status = subprocess.run([*CHAINFEAT, "status", "--flink-url", cluster.url, "--format", "json"],
                            env=cli_env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr  # a batch job has no checkpoints: status says so, not fails
    job = json.loads(status.stdout)
    assert (job["job_id"], job["name"], job["state"], job["last_checkpoint"]) == (
        summary["job_id"], "chainfeat-backfill", "FINISHED", None)  # the cluster ran it, not this process

    local_dir = tmp_path / "local-backfill"
    local = subprocess.run([*CHAINFEAT, "backfill", "--archive", str(archived / "spool"), "--data-dir", str(local_dir),
                            "--dashboard-port", "0", "--format", "json"],
                           env=cli_env, capture_output=True, text=True, timeout=600)
    assert local.returncode == 0, local.stderr[-3000:]
    expected = json.loads(local.stdout)
    assert {k: v for k, v in summary.items() if k not in volatile} == {k: v for k, v in expected.items() if k not in volatile}
    assert summary["windows_written"][GROUP] > 0 and summary["windows_skipped_partial"][GROUP] > 0
    assert summary["dead_letter"] > 0 and summary["window_shapes"] == {GROUP: "TUMBLE 1 min"}
    held, local_held = store_state(data_dir, [GROUP], server)[GROUP], store_state(local_dir, [GROUP])[GROUP]
    assert held["online"] == local_held["online"] and held["offline"] == local_held["offline"]
