"""`chainfeat run` as a user runs it (a subprocess): bounded replay, restart after a kill, speed."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from connectors.blockchain.source import read_recording, shift_poll
from connectors.featurestore.client import minute_key
from connectors.blockchain.synthetic import SyntheticProfile, write_recording
from connectors.featurestore.offline_query import run_query
from connectors.spool import poll_lines
from job.local_run import BUNDLED_RECORDING
from tests.conftest import CHAINFEAT
from tests.job.test_pipeline import free_port
from tests.reference import expected_results

pytestmark = pytest.mark.slow

FEATURES_SQL = "SELECT tx_minute, event_time, total_nb_trx_1min, total_fee_1min, avg_fee_1min FROM tx_minute_features"


def run_args(data_dir: Path, *extra: str) -> list[str]:
    return [*CHAINFEAT, "run", "--data-dir", str(data_dir), "--dashboard-port", str(free_port()),
            "--featurestore-port", "0", *extra]


def reference_for(recording: Path, shift_s: int = 0) -> dict[str, dict]:
    lines = [line for poll in read_recording(recording) for line in poll_lines(shift_poll(poll, shift_s))]
    return expected_results(lines).features


def offline_features(data_dir: Path) -> dict[str, dict]:
    columns, rows = run_query(data_dir, FEATURES_SQL)
    features = {}
    for row in rows:
        record = dict(zip(columns, row))
        assert features.setdefault(record["tx_minute"], record) == record  # re-written windows are identical
    return features


def replay_shift(data_dir: Path, recording: Path) -> int:
    state = json.loads((data_dir / "poller" / "replay.json").read_text())
    first = next(read_recording(recording)).polled_at
    return int((state["origin"] - first) // 60 * 60)


@pytest.fixture(scope="module")
def short_recording(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recordings") / "short.jsonl"
    write_recording(path, SyntheticProfile(duration_s=540, seed=11, burst_every_s=300, burst_length_s=45))
    return path


def test_bundled_replay_matches_reference_and_query_latest_show_it(data_dir, cli_env) -> None:
    result = subprocess.run(run_args(data_dir, "--speed", "0", "--exit-when-done", "--format", "json"),
                            env=cli_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    expected = reference_for(BUNDLED_RECORDING)

    assert offline_features(data_dir) == expected
    polls = list(read_recording(BUNDLED_RECORDING))
    assert summary["polls"] == len(polls) == 261
    assert summary["transactions"] == sum(len(p.txs) for p in polls)
    unique = len({tx["hash"] for p in polls for tx in p.txs})
    assert summary["duplicates"] == summary["transactions"] - unique
    assert summary["windows_written"] == len(expected)
    assert (summary["dead_letter"], summary["late"]) == (0, 0)
    assert summary["gaps"] == 10
    newest = max(expected)
    assert summary["latest_feature_row"] == expected[newest]

    latest = subprocess.run([*CHAINFEAT, "latest", "--format", "json"], env=cli_env, capture_output=True,
                            text=True, timeout=120)
    assert latest.returncode == 0, latest.stderr
    assert json.loads(latest.stdout) == expected[newest]
    query = subprocess.run([*CHAINFEAT, "query", "--format", "json", FEATURES_SQL + " ORDER BY tx_minute"],
                           env=cli_env, capture_output=True, text=True, timeout=120)
    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout) == [expected[key] for key in sorted(expected)]


def test_restart_after_kill_mid_stream_counts_everything_once(data_dir, cli_env, short_recording) -> None:
    first = subprocess.Popen(run_args(data_dir, "--recording", str(short_recording), "--speed", "12"),
                             env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        checkpoints = data_dir / "checkpoints"
        deadline = time.monotonic() + 180
        while not list(checkpoints.glob("*/chk-*/_metadata")) or _polls_done(data_dir) < 15:
            assert first.poll() is None, "the first run ended early"
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.5)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    total_polls = len(list(read_recording(short_recording)))
    assert _polls_done(data_dir) < total_polls  # killed mid-stream

    second = subprocess.run(
        run_args(data_dir, "--recording", str(short_recording), "--speed", "12", "--exit-when-done", "--format", "json"),
        env=cli_env, capture_output=True, text=True, timeout=600,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.loads(second.stdout)
    assert summary["restored_from"]
    assert summary["late"] == 0
    assert offline_features(data_dir) == reference_for(short_recording, replay_shift(data_dir, short_recording))


def test_results_do_not_depend_on_replay_speed(tmp_path, cli_env, short_recording) -> None:
    fast, paced = tmp_path / "fast", tmp_path / "paced"
    for target, speed in ((fast, "0"), (paced, "30")):
        result = subprocess.run(
            run_args(target, "--recording", str(short_recording), "--speed", speed, "--exit-when-done"),
            env=cli_env, capture_output=True, text=True, timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    shift = replay_shift(paced, short_recording)
    assert shift > 0 and shift % 60 == 0
    unshifted = {}
    for row in offline_features(paced).values():
        key = minute_key(datetime.strptime(row["tx_minute"], "%Y-%m-%d %H:%M:%S") - timedelta(seconds=shift))
        unshifted[key] = {**row, "tx_minute": key, "event_time": row["event_time"] - shift}
    assert unshifted == offline_features(fast) == reference_for(short_recording)


def _polls_done(data_dir: Path) -> int:
    try:
        return json.loads((data_dir / "poller" / "replay.json").read_text())["next_poll"]
    except (FileNotFoundError, ValueError):
        return 0
