"""What a user who installs chainfeat gets: the wheel built from this checkout, installed into a venv of its own, run
from an empty directory outside the repo with nothing of the checkout on the path. Its figures are checked against
the independent reference, as a run from the checkout is (tests/job/test_run.py)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.blockchain.source import BUNDLED_RECORDING, read_recording
from tests.conftest import REPO_ROOT
from tests.reference import expected_results
from tests.support import GROUP, child_environment
from tests.support.venvs import cached_venv

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wheel")]

# Never in a build: a setuptools build/ left over from an earlier build would put deleted modules into the wheel.
NOT_BUILT = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                   ".chainfeat", "cdk.out", "site", "node_modules")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip wheel .` builds from a copy of this checkout."""
    source = tmp_path_factory.mktemp("source") / "chainfeat"
    shutil.copytree(REPO_ROOT, source, ignore=NOT_BUILT)
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out),
                            str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (path,) = out.glob("chainfeat-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Iterator[Path]:
    """The bin/ of a venv holding the wheel and its pinned dependencies. The dependencies come from a venv cached by
    their pins (they are the slow part); the wheel is installed into it afresh, and pip checks every requirement.

    The venv is shared, and a reinstall removes the package for a moment: another test session's, or another
    xdist worker's (pytest 9.2 ignores xdist_group: pytest-xdist 3.8 renames a test's node id where pytest no longer
    reads it), would pull it from under a test using it. So an install takes the lock alone, and the tests using the
    venv hold it shared until this module is done with it."""
    dependencies = tuple(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    python = cached_venv("wheel-dependencies", dependencies)
    with open(python.parent.parent / ".wheel-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                  "--force-reinstall", "--no-deps", str(wheel)], capture_output=True, text=True,
                                 timeout=600)
        assert install.returncode == 0, install.stderr[-3000:]
        check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
        assert check.returncode == 0, check.stdout + check.stderr
        fcntl.flock(lock, fcntl.LOCK_SH)
        yield python.parent


def user_environment(home: Path) -> dict[str, str]:
    """A user's shell: no PYTHONPATH, no chainfeat settings from the test session, the bin/ not on PATH."""
    env = {key: value for key, value in child_environment().items()
           if not key.startswith("CHAINFEAT_") and key not in ("PYTHONPATH", "FLINK_LOG_DIR", "VIRTUAL_ENV")}
    return {**env, "HOME": os.environ.get("HOME", str(home))}


def test_the_wheel_holds_the_code_sql_and_data_and_nothing_of_the_checkout(wheel) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("job/cli/main.py", "job/flow/application_properties.json", "job/flow/zip_main.py",
                     "job/flow/managed_flink_programmatic_keys.json", "job/local/project_template/README.md",
                     "connectors/blockchain/recordings/unconfirmed-65min.jsonl.gz", "connectors/featurestore/local/server.py",
                     "connectors/featurestore/last_hour.sql", "sql/parse.sql", "sql/features/tx_minute_features.sql",
                     "sql/features/examples/size_5min.sql", "sql/sources/spool.sql", "udfs/feature_store_writer.py"):
        assert required in names, required
    tracked = subprocess.run(["git", "ls-files", "job", "connectors", "udfs", "sql"], cwd=REPO_ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    shipped = [name for name in tracked if name.endswith((".py", ".sql", ".json", ".jsonl.gz"))]
    assert sorted(set(shipped) - names) == []  # every module, SQL file and data file of the packages ships
    assert not [name for name in names if name.startswith(("tests/", "infra/", "bench/")) or "__pycache__" in name]


def test_installed_chainfeat_runs_the_bundled_replay_from_an_empty_directory(installed, tmp_path) -> None:
    work = tmp_path / "empty"
    work.mkdir()
    env = user_environment(tmp_path)
    located = subprocess.run([str(installed / "python"), "-c", "import job, connectors, udfs; "
                              "print(job.__file__, connectors.__file__, udfs.__file__)"],
                             cwd=work, env=env, capture_output=True, text=True)
    assert located.returncode == 0, located.stderr[-3000:]
    assert str(REPO_ROOT) not in located.stdout and "site-packages" in located.stdout, located.stdout
    version = subprocess.run([str(installed / "chainfeat"), "--version"], cwd=work, env=env, capture_output=True,
                             text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == f"chainfeat {project_version()}", version

    run = subprocess.run([str(installed / "chainfeat"), "run", "--speed", "0", "--exit-when-done", "--format", "json",
                          "--dashboard-port", "0", "--featurestore-port", "0"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout)
    expected = expected_results([(poll.polled_at, json.loads(poll.page)) for poll in read_recording(BUNDLED_RECORDING)])
    complete = expected.complete_features
    assert summary["windows_written"] == summary["windows_computed"] == {GROUP: len(complete)}
    assert summary["newest_rows"] == {GROUP: complete[max(complete)]}
    assert (work / ".chainfeat" / "featurestore").is_dir()  # the default data dir is where the user is


def test_a_project_from_init_runs_and_backfills_with_the_installed_chainfeat(installed, tmp_path) -> None:
    work = tmp_path / "empty"
    work.mkdir()
    env = user_environment(tmp_path)
    chainfeat = str(installed / "chainfeat")
    init = subprocess.run([chainfeat, "init", "my-features"], cwd=work, env=env, capture_output=True, text=True,
                          timeout=60)
    assert init.returncode == 0, init.stderr
    project = work / "my-features"
    assert sorted(path.name for path in project.iterdir()) == ["README.md", "application_properties.json",
                                                               "tx_minute_features.sql"]
    again = subprocess.run([chainfeat, "init", "my-features"], cwd=work, env=env, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 1 and "already exist" in again.stderr  # a user's project is never overwritten

    # The user's group: a feature file of their own beside the example, named by its file.
    (project / "fee_per_minute.sql").write_text(
        (project / "tx_minute_features.sql").read_text().replace("tx_minute_features", "fee_per_minute"))
    options = ["--features", "my-features", "--properties", "my-features/application_properties.json"]
    run = subprocess.run([chainfeat, "run", *options, "--speed", "0", "--exit-when-done", "--format", "json",
                          "--dashboard-port", "0", "--featurestore-port", "0"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    polls = list(read_recording(BUNDLED_RECORDING))
    expected = expected_results([(poll.polled_at, json.loads(poll.page)) for poll in polls])
    windows = len(expected.complete_features)  # the edge rule: tests/reference.py
    assert json.loads(run.stdout)["windows_written"] == {GROUP: windows, "fee_per_minute": windows}

    backfill = subprocess.run([chainfeat, "backfill", *options, "--group", "fee_per_minute", "--format", "json"],
                              cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert backfill.returncode == 0, backfill.stderr[-3000:]
    summary = json.loads(backfill.stdout)
    # The same edge rule as the run's: the complete windows written, the partial ones skipped.
    assert summary["windows_written"]["fee_per_minute"] == windows
    assert summary["windows_skipped_partial"]["fee_per_minute"] == len(expected.features) - windows


def project_version() -> str:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
