"""The chainfeat CLI run as a user runs it (a subprocess), over a real feature store data dir."""

from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest

from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig
from connectors.featurestore.local.server import LocalFeatureStoreServer
from job.local.data_dir import DataDir
from tests.conftest import CHAINFEAT
from tests.support import chainfeat, error_lines
from tests.support.feature_rows import DEFINITION, GROUP, feature_rows

pytestmark = pytest.mark.slow


@pytest.fixture
def written_rows(data_dir) -> list[dict]:
    rows = feature_rows(7)
    with LocalFeatureStoreServer(DataDir(data_dir).featurestore, port=0).start() as server:
        client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url))
        client.ensure_feature_group(DEFINITION)
        client.put_records(GROUP, rows)
    return rows


def test_query_json_csv_and_table(cli_env, written_rows) -> None:
    sql = f"SELECT tx_minute, total_nb_trx_1min, avg_fee_1min FROM {GROUP} ORDER BY tx_minute"
    result = chainfeat(cli_env, "query", "--format", "json", sql)
    assert result.returncode == 0, result.stderr
    expected = [{k: row[k] for k in ("tx_minute", "total_nb_trx_1min", "avg_fee_1min")} for row in written_rows]
    assert json.loads(result.stdout) == expected

    result = chainfeat(cli_env, "query", "--format", "csv", sql)
    assert result.returncode == 0, result.stderr
    parsed = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["tx_minute"] for row in parsed] == [row["tx_minute"] for row in written_rows]
    assert [int(row["total_nb_trx_1min"]) for row in parsed] == list(range(1, 8))

    result = chainfeat(cli_env, "query", sql)
    assert result.returncode == 0, result.stderr
    assert written_rows[-1]["tx_minute"] in result.stdout and "total_nb_trx_1min" in result.stdout


def test_query_sees_offline_extra_columns_and_partitions(cli_env, written_rows) -> None:
    result = chainfeat(
        cli_env, "query", "--format", "json",
        f"SELECT count(*) AS n, bool_or(is_deleted) AS any_deleted, min(year) AS year FROM {GROUP}",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": 7, "any_deleted": False, "year": "2024"}]


def test_query_error_names_the_tables(cli_env, written_rows) -> None:
    result = chainfeat(cli_env, "query", "SELECT * FROM no_such_table")
    assert result.returncode == 1
    assert "no_such_table" in result.stderr and f"feature groups you can query: {GROUP}" in result.stderr


def test_latest_starts_a_server_for_the_call(cli_env, written_rows) -> None:
    result = chainfeat(cli_env, "latest", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == written_rows[-1]


def test_latest_uses_the_running_server(cli_env, data_dir, written_rows) -> None:
    with LocalFeatureStoreServer(DataDir(data_dir).featurestore, port=0).start():  # holds the data dir's lock
        result = chainfeat(cli_env, "latest")
    assert result.returncode == 0, result.stderr
    assert written_rows[-1]["tx_minute"] in result.stdout and "avg_fee_1min" in result.stdout


def test_latest_before_any_feature_exits_3(cli_env) -> None:
    result = chainfeat(cli_env, "latest", "--format", "json")
    assert result.returncode == 3
    assert "chainfeat run" in result.stderr


@pytest.fixture
def broken_recordings(tmp_path):
    """A gzip recording cut in the middle (a copy interrupted) and one whose bytes are not gzip at all."""
    from job.local.run import BUNDLED_RECORDING

    whole = BUNDLED_RECORDING.read_bytes()
    truncated, corrupt = tmp_path / "truncated.jsonl.gz", tmp_path / "corrupt.jsonl.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    corrupt.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 40)
    return truncated, corrupt


def test_a_broken_recording_is_one_error_naming_the_file(cli_env, broken_recordings, tmp_path) -> None:
    truncated, corrupt = broken_recordings
    polled = chainfeat(cli_env, "poll", "--source", "replay", "--recording", str(truncated), "--speed", "0")
    assert polled.returncode == 1, polled.stderr
    errors = error_lines(polled.stderr)
    assert len(errors) == 1 and str(truncated) in errors[0] and "cannot be read after line" in errors[0], polled.stderr
    assert "Traceback" not in polled.stderr
    assert int(polled.stderr.strip().splitlines()[-2].split()[0]) > 0  # the polls before the break were replayed

    for command in (["poll", "--source", "replay"], ["run", "--exit-when-done"]):
        result = chainfeat(cli_env, *command, "--data-dir", str(tmp_path / command[0]), "--recording", str(corrupt),
                           "--speed", "0")
        assert result.returncode == 1, result.stderr
        errors = error_lines(result.stderr)
        assert len(errors) == 1 and str(corrupt) in errors[0], result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("mistake", [("--source", "nowhere"), ("--recording", "no-such-recording.jsonl.gz")])
def test_the_same_mistake_is_the_same_exit_code_in_run_and_poll(cli_env, tmp_path, mistake) -> None:
    for command in ("run", "poll"):
        result = chainfeat(cli_env, command, "--data-dir", str(tmp_path / command), *mistake)
        assert result.returncode == 2, (command, result.stderr)
        assert mistake[0] in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / command).exists()  # refused before anything is written


def test_exit_when_done_on_a_live_source_is_wrong_usage(cli_env, tmp_path) -> None:
    result = chainfeat(cli_env, "run", "--data-dir", str(tmp_path), "--source", "live", "--exit-when-done")
    assert result.returncode == 2 and error_lines(result.stderr) == [
        "error: --exit-when-done needs a replay: a live source never ends"], result.stderr


def test_latest_reads_the_records_asked_for_and_names_the_missing(cli_env, written_rows) -> None:
    wanted = [written_rows[2]["tx_minute"], written_rows[5]["tx_minute"]]
    both = chainfeat(cli_env, "latest", "--group", GROUP, "--id", wanted[0], "--id", wanted[1], "--format", "json")
    assert both.returncode == 0, both.stderr
    assert sorted(json.loads(both.stdout), key=lambda row: row["tx_minute"]) == [written_rows[2], written_rows[5]]
    one = chainfeat(cli_env, "latest", "--id", wanted[0], "--format", "json")  # the default group
    assert one.returncode == 0 and json.loads(one.stdout) == written_rows[2], one.stderr
    partly = chainfeat(cli_env, "latest", "--id", wanted[0], "--id", "1999-01-01 00:00:00", "--format", "csv")
    assert partly.returncode == 3 and error_lines(partly.stderr) == [
        f"error: not in {GROUP} (online): 1999-01-01 00:00:00"], partly.stderr
    assert [row["tx_minute"] for row in csv.DictReader(io.StringIO(partly.stdout))] == [wanted[0]]


def test_latest_of_a_group_the_store_lacks_lists_the_groups_it_has(cli_env, written_rows) -> None:
    result = chainfeat(cli_env, "latest", "--group", "no_such_group")
    assert result.returncode == 3
    (error,) = error_lines(result.stderr)
    assert "no feature group no_such_group" in error and f"its groups: {GROUP} " in error and "--group" in error


def test_delete_group_asks_first_then_the_group_is_gone_and_can_be_made_again(cli_env, written_rows) -> None:
    kept = subprocess.run([*CHAINFEAT, "featurestore", "delete-group", GROUP], input="n\n", env=cli_env,
                          capture_output=True, text=True, timeout=120)
    assert kept.returncode == 2 and chainfeat(cli_env, "latest").returncode == 0, kept.stderr
    deleted = chainfeat(cli_env, "featurestore", "delete-group", GROUP, "--yes")
    assert deleted.returncode == 0, deleted.stderr
    gone = chainfeat(cli_env, "latest")
    assert gone.returncode == 3 and "no feature group in the local store in" in gone.stderr and "chainfeat run" in gone.stderr
    again = chainfeat(cli_env, "featurestore", "delete-group", GROUP, "--yes")
    assert again.returncode == 3 and f"no feature group {GROUP}" in again.stderr
