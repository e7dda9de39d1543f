"""`chainfeat package`: the zip's layout and run options, the offline error, and the job run from the zip."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from job.deploy.package import LOCAL_ONLY, RUNTIME_DISTRIBUTIONS, WORKER_CODE, unpack
from job.flow.config import RUN_OPTIONS_GROUP
from tests.conftest import CHAINFEAT
from tests.reference import expected_results
from tests.support import GROUP, free_port, online_rows, publish, reference_input, scenario
from tests.support.python312 import find_python312, python312_with_flink


def test_zip_layout_and_run_options_match_what_managed_flink_needs(app_zip) -> None:
    output, summary = app_zip
    names = set(zipfile.ZipFile(output).namelist())
    assert summary["property_group"] == RUN_OPTIONS_GROUP == "kinesis.analytics.flink.run.options"
    # The run options point at files and folders inside the zip, relative to its root.
    assert summary["python"] == "main.py" and "main.py" in names
    assert summary["jarfile"] == "lib/connector.jar" and "lib/connector.jar" in names
    for folder in summary["pyFiles"].split(","):
        assert folder.endswith("/") and any(name.startswith(folder) for name in names)
    for required in ("job/flow/entrypoint.py", "job/flow/application_properties.json", "udfs/feature_store_writer.py",
                     "sql/features/tx_minute_features.sql", "sql/sources/kinesis.sql",
                     "site-packages/boto3/__init__.py", "site-packages/botocore/data/endpoints.json",
                     "site-packages/urllib3/__init__.py", "site-packages/six.py"):
        assert required in names, required
    assert not [name for name in names if "__pycache__" in name or name.startswith("tests/")]
    assert not [name for name in names if name.startswith(LOCAL_ONLY)]  # the emulator never runs on a cluster
    # The UDF workers' copy of the code, on their PYTHONPATH through pyFiles (code may not set python.files
    # on Managed Flink): the same files as the root's packages.
    assert f"{WORKER_CODE}/" in summary["pyFiles"].split(",")
    packages = {name for name in names if name.startswith(("job/", "connectors/", "udfs/"))}
    assert {name.removeprefix(f"{WORKER_CODE}/") for name in names if name.startswith(f"{WORKER_CODE}/")} == packages


def test_the_job_and_its_workers_import_nothing_left_out_of_the_zip() -> None:
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, job.flow.entrypoint, udfs.feature_store_writer, udfs.metrics; "
                               "print('\\n'.join(m.__file__ or '' for m in list(sys.modules.values()) if getattr(m, '__file__', None)))"],
        capture_output=True, text=True, check=True).stdout.splitlines()
    local_only = [path for path in imported for prefix in LOCAL_ONLY if prefix.rstrip("/") in path]
    assert local_only == []


def test_offline_package_names_the_file_to_download(tmp_path, cli_env) -> None:
    closed = free_port()  # nothing listens there once the probe closed
    env = {**cli_env, "CHAINFEAT_MAVEN_URL": f"http://127.0.0.1:{closed}/maven2"}
    result = subprocess.run([*CHAINFEAT, "package", "--output", str(tmp_path / "app.zip"), "--cache", str(tmp_path)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "flink-sql-connector-aws-kinesis-streams-6.0.0-2.0.jar" in result.stderr
    assert "/org/apache/flink/flink-sql-connector-aws-kinesis-streams/6.0.0-2.0/" in result.stderr
    assert "--jar" in result.stderr and not (tmp_path / "app.zip").exists()


def run_unpacked_zip(python: str, app_zip, tmp_path, server, cli_env) -> tuple[subprocess.CompletedProcess, Path, list]:
    """The zip's main.py run by ``python`` on a MiniCluster over the shared scenario, writing to ``server``."""
    root = unpack(app_zip[0], tmp_path / "unpacked")
    data_dir = tmp_path / "zip-data"
    polls = scenario()
    publish(data_dir, polls)
    groups = json.loads((root / "job" / "flow" / "application_properties.json").read_text())
    for group in groups:
        if group["PropertyGroupId"] == "Source":
            group["PropertyMap"]["monitor.interval.s"] = ""  # bounded: read the feed, then finish
        if group["PropertyGroupId"] == "FeatureStore":
            group["PropertyMap"]["endpoint.url"] = server.url
    properties = tmp_path / "properties.json"
    properties.write_text(json.dumps(groups))
    env = {**cli_env, "CHAINFEAT_PROPERTIES": str(properties), "CHAINFEAT_DATA_DIR": str(data_dir),
           "PYTHONPATH": "", "FLINK_LOG_DIR": str(tmp_path / "logs")}
    result = subprocess.run([python, "main.py"], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    return result, root, polls


@pytest.mark.slow
def test_the_job_runs_from_the_unpacked_zip(app_zip, tmp_path, server, cli_env) -> None:
    result, root, polls = run_unpacked_zip(sys.executable, app_zip, tmp_path, server, cli_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"code from {root}" in result.stderr  # the zip's code ran, not the repo's
    assert online_rows(server.url, GROUP) == expected_results(reference_input(polls)).features


def test_what_the_zip_vendors_is_pure_python(app_zip) -> None:
    """Nothing compiled for this Python: the service runs PyFlink on 3.12, these copies come from 3.11."""
    names = zipfile.ZipFile(app_zip[0]).namelist()
    vendored = [name for name in names if name.startswith("site-packages/")]
    assert vendored and not [name for name in vendored if name.endswith((".so", ".pyd", ".dylib", ".pyc"))]
    for distribution in RUNTIME_DISTRIBUTIONS:
        assert "Root-Is-Purelib: true" in importlib.metadata.distribution(distribution).read_text("WHEEL")


@pytest.mark.slow
def test_the_zip_runs_on_python_3_12_as_managed_flink_runs_it(app_zip, tmp_path, server, cli_env) -> None:
    """Managed Flink's Flink 2.x runtimes run PyFlink on Python 3.12: the zip's job, with only its vendored
    site-packages beside a plain PyFlink (no boto3, no msgspec, nothing of this project's), on a MiniCluster
    of a 3.12 interpreter, writes the same features as the reference (and as the 3.11 run above)."""
    python = find_python312()
    if python is None:
        pytest.skip("no Python 3.12 here (pyenv install 3.12, or python3.12 on PATH): cannot run the zip as the "
                    "service does")
    interpreter = python312_with_flink(python)
    check = subprocess.run([str(interpreter), "-c", "import sys, importlib.util as u; print(sys.version_info[:2], "
                            "[m for m in ('boto3', 'msgspec', 'job') if u.find_spec(m)])"],
                           capture_output=True, text=True, check=True, env={**cli_env, "PYTHONPATH": ""}, cwd=tmp_path)
    assert check.stdout.strip() == "(3, 12) []"  # only the zip can bring what the job imports
    result, root, polls = run_unpacked_zip(str(interpreter), app_zip, tmp_path, server, cli_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"code from {root}" in result.stderr
    assert online_rows(server.url, GROUP) == expected_results(reference_input(polls)).features
