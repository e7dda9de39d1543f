"""`chainfeat run` as a user runs it (a subprocess): bounded replay, added feature files, restarts after a
kill, an outage that fails the job, replay speed — each checked against the independent reference."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from connectors.blockchain.source import read_recording, shift_poll
from connectors.blockchain.synthetic import SyntheticProfile, write_recording
from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig
from connectors.featurestore.local.offline import OfflineQueryError, feature_groups, run_query
from job.flow.sql_files import FEATURES_DIR
from job.local.data_dir import DataDir
from job.local.run import BUNDLED_RECORDING
from tests.conftest import CHAINFEAT
from tests.reference import expected_results, minute_key, tumbling
from tests.support import (
    GROUP,
    SHORT_PROFILE,
    alive,
    descendants,
    error_lines,
    online_rows,
    properties_with_store,
    replay_shift,
)
from tests.support.example_features import (
    ADDRESSES,
    RELAYS,
    example_windows,
    features_with_examples,
    write_feature_with_unknown_column,
    write_relayed_recording,
)

pytestmark = pytest.mark.slow

FEATURES_SQL = f"SELECT tx_minute, event_time, total_nb_trx_1min, total_fee_1min, avg_fee_1min FROM {GROUP}"



def run_args(data_dir: Path, *extra: str) -> list[str]:
    return [*CHAINFEAT, "run", "--data-dir", str(data_dir), "--dashboard-port", "0",  # 0: the run picks a free port
            "--featurestore-port", "0", *extra]


def reference_for(recording: Path, shift_s: int = 0):
    return reference_for_polls([shift_poll(poll, shift_s) for poll in read_recording(recording)])


def reference_for_polls(polls: list):
    return expected_results([(poll.polled_at, json.loads(poll.page)) for poll in polls])


def offline_rows(data_dir: Path, sql: str, key: str | tuple[str, ...]) -> dict:
    """Offline rows by key; each window once (one re-emitted after a restore is not written again)."""
    columns, rows = run_query(DataDir(data_dir).featurestore, sql)
    found: dict = {}
    for row in rows:
        record = dict(zip(columns, row))
        identity = tuple(record[k] for k in key) if isinstance(key, tuple) else record[key]
        assert identity not in found, f"written twice offline: {record}"
        found[identity] = record
    return found


def offline_features(data_dir: Path) -> dict[str, dict]:
    return offline_rows(data_dir, FEATURES_SQL, "tx_minute")


@pytest.fixture(scope="module")
def short_recording(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recordings") / "short.jsonl"
    write_recording(path, SHORT_PROFILE)
    return path


@pytest.fixture(scope="module")
def relayed_recording(tmp_path_factory) -> Path:
    return write_relayed_recording(tmp_path_factory.mktemp("recordings") / "relayed.jsonl",
                                   SyntheticProfile(duration_s=600, seed=5))


def test_bundled_replay_matches_reference_and_query_latest_show_it(data_dir, cli_env, tmp_path) -> None:
    result = subprocess.run(run_args(data_dir, "--speed", "0", "--exit-when-done", "--format", "json"),
                            env=cli_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    reference = reference_for(BUNDLED_RECORDING)
    expected = reference.complete_features  # the windows the recording covers completely (README "Edge windows")
    assert 0 < len(expected) < len(reference.features)

    assert offline_features(data_dir) == expected
    polls = list(read_recording(BUNDLED_RECORDING))
    assert summary["polls"] == len(polls) == 261
    assert summary["transactions"] == sum(len(p.txs) for p in polls)
    unique = len({tx["hash"] for p in polls for tx in p.txs})
    assert summary["duplicates"] == reference.duplicates == summary["transactions"] - unique
    assert summary["windows_written"] == summary["windows_computed"] == summary["records_online"] == {GROUP: len(expected)}
    assert (summary["dead_letter"], summary["late"], summary["job_restarts"]) == (0, 0, 0)
    assert summary["gaps"] == 10
    assert "gap in the recording" not in result.stderr and " INFO " not in result.stderr  # counted, not logged
    newest = max(expected)
    assert summary["newest_rows"] == {GROUP: expected[newest]}

    latest = subprocess.run([*CHAINFEAT, "latest", "--format", "json"], env=cli_env, capture_output=True,
                            text=True, timeout=120)
    assert latest.returncode == 0, latest.stderr
    assert json.loads(latest.stdout) == expected[newest]
    query = subprocess.run([*CHAINFEAT, "query", "--format", "json", FEATURES_SQL + " ORDER BY tx_minute"],
                           env=cli_env, capture_output=True, text=True, timeout=120)
    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout) == [expected[key] for key in sorted(expected)]

    again = subprocess.run(run_args(data_dir, "--speed", "0", "--exit-when-done", "--format", "json"),
                           env=cli_env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]  # a finished replay: nothing new, no hang
    assert json.loads(again.stdout)["polls"] == 0 and offline_features(data_dir) == expected

    # A feature file added to this finished data dir: no traceback, one line saying how to fill it, and that works.
    features = tmp_path / "features"
    features.mkdir()
    for source in (FEATURES_DIR / f"{GROUP}.sql", FEATURES_DIR / "examples" / "size_5min.sql"):
        (features / source.name).write_text(source.read_text())
    added = subprocess.run(run_args(data_dir, "--speed", "0", "--exit-when-done", "--format", "json",
                                    "--features", str(features)), env=cli_env, capture_output=True, text=True,
                           timeout=300)
    assert added.returncode == 0 and "Traceback" not in added.stderr, added.stderr[-3000:]
    assert json.loads(added.stdout)["windows_written"] == {GROUP: len(expected)}
    (hint,) = [line for line in added.stderr.splitlines() if "size_5min is new" in line]
    command = hint.split("`")[1].split()
    assert command[:2] == ["chainfeat", "backfill"] and command[-2:] == ["--group", "size_5min"]
    filled = subprocess.run([*CHAINFEAT, *command[1:], "--format", "json"], env=cli_env, capture_output=True,
                            text=True, timeout=300)
    assert filled.returncode == 0, filled.stderr[-3000:]
    assert json.loads(filled.stdout)["windows_written"]["size_5min"] > 0
    settled = subprocess.run(run_args(data_dir, "--speed", "0", "--exit-when-done", "--format", "json",
                                      "--features", str(features)), env=cli_env, capture_output=True, text=True,
                             timeout=300)
    assert settled.returncode == 0 and "is new" not in settled.stderr, settled.stderr[-3000:]
    assert set(json.loads(settled.stdout)["windows_written"]) == {GROUP, "size_5min"}


def test_added_hop_cumulate_and_entity_feature_files_match_the_reference(data_dir, cli_env, tmp_path, relayed_recording) -> None:
    features = features_with_examples(tmp_path / "features")
    result = subprocess.run(
        run_args(data_dir, "--recording", str(relayed_recording), "--speed", "0", "--exit-when-done", "--format", "json",
                 "--features", str(features)),
        env=cli_env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    reference = reference_for(relayed_recording)
    windows = {group: [window for window in found if reference.covers(window.start, window.end)]
               for group, found in example_windows(reference.unique).items()}
    hop = {window.row["window_start_utc"]: window.row for window in windows["size_5min"]}
    cumulative = {window.row["window_end_utc"]: window.row for window in windows["fee_10min_so_far"]}
    relay = {(window.row["relayed_by"], window.row["event_time"]): window.row for window in windows["relay_minute"]}
    received = {(window.row["address"], window.row["event_time"]): window.row for window in windows["address_minute"]}
    assert len(hop) >= 4 and {key for key, _ in relay} == set(RELAYS) and {key for key, _ in received} == set(ADDRESSES)

    offline_hop = offline_rows(data_dir, "SELECT window_start_utc, event_time, nb_trx_5min, avg_size_5min, "
                                         "total_inputs_5min FROM size_5min", "window_start_utc")
    assert offline_hop.keys() == hop.keys()
    for key, row in hop.items():  # averages: equal up to float summation order
        assert offline_hop[key] == {**row, "avg_size_5min": pytest.approx(row["avg_size_5min"], rel=1e-12)}
    offline_relay = offline_rows(data_dir, "SELECT relayed_by, event_time, nb_trx_1min, max_fee_1min, nb_rbf_1min "
                                           "FROM relay_minute", ("relayed_by", "event_time"))
    assert offline_relay == relay  # every window of every node
    assert offline_rows(data_dir, "SELECT window_end_utc, event_time, total_fee_so_far FROM fee_10min_so_far",
                        "window_end_utc") == cumulative
    assert offline_rows(data_dir, "SELECT address, event_time, nb_outputs_1min, nb_trx_1min, total_received_1min "
                                  "FROM address_minute", ("address", "event_time")) == received  # from unique_outputs

    # Online keeps, per node, its newest minute.
    newest_per_relay = {}
    for (node, event_time), row in relay.items():
        if node not in newest_per_relay or event_time > newest_per_relay[node]["event_time"]:
            newest_per_relay[node] = row
    with_store = subprocess.run([*CHAINFEAT, "latest", "--group", "relay_minute", "--format", "json"],
                                env=cli_env, capture_output=True, text=True, timeout=120)
    assert with_store.returncode == 0, with_store.stderr
    newest = max(newest_per_relay.values(), key=lambda row: (row["event_time"], row["relayed_by"]))
    assert json.loads(with_store.stdout) == newest
    # Windows and records apart: a per-entity group computes and writes every (node, minute), and holds one online
    # record per node; every window is checked against the store, not only each node's newest.
    windows_per_group = {GROUP: len(reference.complete_features), "relay_minute": len(relay),
                         "size_5min": len(hop), "fee_10min_so_far": len(cumulative), "address_minute": len(received)}
    assert summary["windows_written"] == summary["windows_computed"] == windows_per_group
    assert summary["records_online"] == {**windows_per_group, "relay_minute": len(RELAYS),
                                         "address_minute": len(ADDRESSES)}
    assert summary["newest_rows"]["relay_minute"] == newest


def test_a_feature_file_with_an_unknown_column_stops_the_run_with_one_message(data_dir, cli_env, tmp_path) -> None:
    features, expected_error = write_feature_with_unknown_column(tmp_path / "features")
    result = subprocess.run(run_args(data_dir, "--speed", "0", "--exit-when-done", "--features", str(features)),
                            env=cli_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    errors = error_lines(result.stderr)
    assert errors == [f"error: {expected_error}"], result.stderr
    assert "Traceback" not in result.stderr and "\tat org.apache" not in result.stderr
    assert not (data_dir / "spool").exists() and not (data_dir / "checkpoints").exists()  # nothing started


def test_restart_after_kill_mid_stream_counts_everything_once(data_dir, cli_env, short_recording, tmp_path) -> None:
    # An empty plan cache: the first run plans the job and caches its plan, the second resumes from the first
    # one's checkpoint running the cached plan (job/flow/plan_cache.py), so the operators' state must map.
    # The first run replays at half the second's pace: on a loaded machine (four test workers on two cores) its
    # first checkpoint once came after the whole replay at speed 12, and then no kill is mid-stream. The second
    # resumes at speed 12 (the replay keeps its time origin, so what is left is due at once).
    plans = tmp_path / "plans"
    cli_env = {**cli_env, "CHAINFEAT_PLAN_CACHE": str(plans)}
    first = subprocess.Popen(run_args(data_dir, "--recording", str(short_recording), "--speed", "6"),
                             env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    below: list[int] = []
    try:
        checkpoints = data_dir / "checkpoints"
        deadline = time.monotonic() + 180
        while not list(checkpoints.glob("*/chk-*/_metadata")) or _polls_done(data_dir) < 15:
            assert first.poll() is None, "the first run ended early"
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.5)
        below = descendants(first.pid)  # the MiniCluster's JVM and its Python workers
        assert below
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    deadline = time.monotonic() + 30
    while alive(below) and time.monotonic() < deadline:  # the JVM exits when the run that started it dies
        time.sleep(0.5)
    assert alive(below) == []
    total_polls = len(list(read_recording(short_recording)))
    assert _polls_done(data_dir) < total_polls  # killed mid-stream
    assert len(list(plans.glob("plan-*.json"))) == 1

    second = subprocess.run(
        run_args(data_dir, "--recording", str(short_recording), "--speed", "12", "--exit-when-done", "--format", "json"),
        env=cli_env, capture_output=True, text=True, timeout=600,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.loads(second.stdout)
    assert summary["restored_from"]
    assert summary["job_plan"] == "cached"
    assert summary["late"] == 0
    assert offline_features(data_dir) == reference_for(short_recording,
                                                       replay_shift(data_dir, short_recording)).complete_features


def test_a_job_flink_refuses_to_start_is_one_line_naming_the_restore_point(data_dir, cli_env, short_recording) -> None:
    damaged = DataDir(data_dir).savepoints / "savepoint-000000-damaged"  # e.g. a disk that filled up mid-write
    damaged.mkdir(parents=True)
    (damaged / "_metadata").write_bytes(b"\0" * 100)
    result = subprocess.run(run_args(data_dir, "--recording", str(short_recording), "--speed", "0", "--exit-when-done"),
                            env=cli_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and damaged.resolve().as_uri() in errors[0] and "--reset-job" in errors[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "\tat org.apache" not in result.stderr
    assert "Caused by" in DataDir(data_dir).submit_error.read_text()  # the whole chain, for a bug report


def test_a_store_outage_that_fails_the_job_mid_replay_changes_nothing(server, data_dir, tmp_path, cli_env,
                                                                     short_recording) -> None:
    """The feature store answers 503 longer than the writer retries (3 s here): Flink restarts the job from its
    last checkpoint, the restored job re-reads what it had not checkpointed, and the windows are exact."""
    properties = properties_with_store(server.url, tmp_path, retry_timeout_s=3)
    run_dir = tmp_path / "run"
    run = subprocess.Popen(
        run_args(run_dir, "--recording", str(short_recording), "--speed", "12", "--exit-when-done", "--format", "json",
                 "--properties", str(properties)),
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url))
        deadline = time.monotonic() + 180
        while not (client.exists(GROUP) and server.store.online_count(GROUP) >= 2):
            assert run.poll() is None and time.monotonic() < deadline, "no window written in time"
            time.sleep(0.3)
        request = urllib.request.Request(f"{server.url}/_chainfeat/faults", method="POST",
                                         data=json.dumps({"count": 13, "status": 503, "writes_only": True}).encode())
        urllib.request.urlopen(request, timeout=10).close()  # ~8 failed attempts fail the job, then the rest
        stdout, stderr = run.communicate(timeout=600)
    finally:
        run.kill()
    assert run.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout)
    assert summary["job_restarts"] >= 1 and summary["late"] == 0 and summary["store_retries"] >= 1
    expected = reference_for(short_recording, replay_shift(run_dir, short_recording)).complete_features
    assert offline_features(data_dir) == expected
    assert online_rows(server.url, GROUP) == expected


def test_a_store_outage_shorter_than_the_retry_time_is_ridden_out_without_a_restart(server, data_dir, tmp_path,
                                                                                     cli_env, short_recording) -> None:
    """15 failed writes in a row (some 20 s of backoff) are retried by the writer within its default time:
    no Flink restart, the retries show in the summary, the windows are exact."""
    properties = properties_with_store(server.url, tmp_path)
    server.app.faults.arm(15, "error", 503, "ServiceUnavailable", writes_only=True)
    result = subprocess.run(
        run_args(tmp_path / "run", "--recording", str(short_recording), "--speed", "0", "--exit-when-done",
                 "--format", "json", "--properties", str(properties)),
        env=cli_env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["job_restarts"] == 0 and summary["store_retries"] >= 15
    assert server.app.faults.state()["injected"] == 15
    expected = reference_for(short_recording).complete_features  # at speed 0 the replay keeps the recording's times
    assert offline_features(data_dir) == expected
    assert online_rows(server.url, GROUP) == expected


def test_a_run_whose_job_fails_for_good_exits_1_and_says_why(server, tmp_path, cli_env, short_recording) -> None:
    """The store keeps failing: Flink's restarts run out, windows are missing, and the run must not exit 0."""
    properties = properties_with_store(server.url, tmp_path, retry_timeout_s=3)
    server.app.faults.arm(1_000_000, "error", 503, "ServiceUnavailable", writes_only=True)
    result = subprocess.run(
        run_args(tmp_path / "run", "--recording", str(short_recording), "--speed", "0", "--exit-when-done",
                 "--properties", str(properties)),
        env=cli_env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    error = error_lines(result.stderr)
    assert len(error) == 1 and "the Flink job failed" in error[0] and "ServiceUnavailable" in error[0], result.stderr[-3000:]
    assert "resume with the same command" in error[0]


def test_a_store_that_loses_acknowledged_writes_fails_the_run(server, tmp_path, cli_env, short_recording) -> None:
    """The store answers a write with success and keeps nothing: windows the job computed are missing, so the
    bounded run must say so and exit 1, not 0. (One write: a fast run may write all its windows in one.)"""
    properties = properties_with_store(server.url, tmp_path)
    server.app.faults.arm(1, "lose", writes_only=True)
    result = subprocess.run(
        run_args(tmp_path / "run", "--recording", str(short_recording), "--speed", "0", "--exit-when-done",
                 "--properties", str(properties)),
        env=cli_env, capture_output=True, text=True, timeout=600,
    )
    assert server.app.faults.state()["injected"] == 1
    assert result.returncode == 1, result.stderr[-3000:]
    error = error_lines(result.stderr)
    assert len(error) == 1 and "windows the job computed are not in the feature store" in error[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr


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
        started = datetime.strptime(row["tx_minute"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        key = minute_key(int(started.timestamp()) - shift)
        unshifted[key] = {**row, "tx_minute": key, "event_time": row["event_time"] - shift}
    assert unshifted == offline_features(fast) == reference_for(short_recording).complete_features


def _live_lines(stderr: str) -> list[dict[str, str]]:
    """The live view's compact lines (a pipe gets one every 10 s, `[   20s] polls=2 transactions=200 ...`) as
    key -> value."""
    return [dict(part.split("=", 1) for part in line.split("] ", 1)[1].split() if "=" in part)
            for line in stderr.splitlines() if line.startswith("[") and "] polls=" in line]


def test_live_view_counts_a_duplicate_only_once_the_job_has_dropped_it(tmp_path, cli_env) -> None:
    """A paced replay at speed 1 (90 s of polls, every page 100 transactions of which the earlier ones are re-polls of
    the previous page). While it runs, the live view never shows more duplicates than the polls shown so far hold
    re-polls: sightings in seconds the watermark (a minute behind) has not passed are shown apart, as awaiting it.
    At the end, every duplicate is counted and nothing awaits."""
    recording = tmp_path / "paced.jsonl"
    write_recording(recording, SyntheticProfile(duration_s=90, seed=13))
    polls = list(read_recording(recording))
    result = subprocess.run(run_args(tmp_path / "run", "--recording", str(recording), "--speed", "1",
                                     "--exit-when-done", "--format", "json"),
                            env=cli_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    lines = _live_lines(result.stderr)
    assert len(lines) >= 6, result.stderr[-3000:]  # one every 10 s over at least the 90 s of polls
    for line in lines:
        polled = int(line["polls"])
        repolls = reference_for_polls(polls[:polled]).duplicates
        assert int(line["duplicates"]) <= repolls, (line, repolls)
        assert int(line["duplicates"]) + int(line["awaiting_watermark"]) <= int(line["transactions"]), line
    assert any(int(line["awaiting_watermark"]) > 0 for line in lines)  # the view says what is not known yet

    summary = json.loads(result.stdout)
    reference = reference_for_polls(polls)
    assert 0 < reference.duplicates < summary["transactions"] == sum(len(poll.txs) for poll in polls)
    assert (summary["duplicates"], summary["awaiting_watermark"]) == (reference.duplicates, 0)


def _polls_done(data_dir: Path) -> int:
    try:
        return json.loads((data_dir / "poller" / "replay.json").read_text())["next_poll"]
    except (FileNotFoundError, ValueError):
        return 0


def test_a_feature_file_that_gains_a_column_evolves_its_group_on_the_next_run(server, data_dir, tmp_path, cli_env,
                                                                             short_recording) -> None:
    """Stop a run, add a column to its feature file. Resuming the job's state is refused in one message (Flink
    cannot restore windows into a changed query) before the group changes; the next run started afresh adds
    the feature to the group (UpdateFeatureGroup) before it writes, and the group keeps every row it held.
    Before that, a feature file removed: the state of its windows has no place in the job, refused in one message."""
    properties = properties_with_store(server.url, tmp_path)  # a store that outlives the run's data dir
    run_dir = tmp_path / "run"
    features = tmp_path / "features"
    features.mkdir()
    shutil.copy(FEATURES_DIR / f"{GROUP}.sql", features)
    shutil.copy(FEATURES_DIR / "examples" / "relay_minute.sql", features)  # removed before the first resume
    run = ["--recording", str(short_recording), "--properties", str(properties), "--features", str(features)]
    first = subprocess.Popen(run_args(run_dir, *run, "--speed", "0"), env=cli_env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)  # runs on after the replay, until Ctrl-C
    try:
        deadline = time.monotonic() + 180
        while _windows_offline(data_dir) < 3 or _polls_done(run_dir) < 15:
            assert first.poll() is None, f"the first run ended early: {first.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "no windows in time"
            time.sleep(0.5)
        first.send_signal(signal.SIGINT)  # Ctrl-C: a savepoint, then exit 0
        assert first.wait(timeout=120) == 0, first.stderr.read()[-3000:]
    finally:
        first.kill()
    server.store.flush_offline()
    before_columns, before_rows = run_query(DataDir(data_dir).featurestore, f"SELECT * FROM {GROUP}")
    before = [dict(zip(before_columns, row)) for row in before_rows]
    held_online = online_rows(server.url, GROUP)

    shutil.copy(FEATURES_DIR / "examples" / "size_5min.sql", features)  # a feature file added: a group the state lacks
    added = subprocess.run(run_args(run_dir, *run, "--speed", "0", "--exit-when-done"), env=cli_env,
                           capture_output=True, text=True, timeout=300)
    assert added.returncode == 1 and "Traceback" not in added.stderr
    (error,) = error_lines(added.stderr)
    assert error.startswith("error: size_5min: feature file(s) added since the job state") and "--reset-job" in error \
        and "chainfeat backfill --group" in error, added.stderr[-3000:]
    (features / "size_5min.sql").unlink()

    (features / "relay_minute.sql").unlink()
    removed = subprocess.run(run_args(run_dir, *run, "--speed", "0", "--exit-when-done"), env=cli_env,
                             capture_output=True, text=True, timeout=300)
    assert removed.returncode == 1
    errors = error_lines(removed.stderr)
    assert len(errors) == 1 and "taken by a different job" in errors[0] and "--reset-job" in errors[0], \
        removed.stderr[-3000:]
    assert "Traceback" not in removed.stderr and "\tat org.apache" not in removed.stderr

    sql = (features / f"{GROUP}.sql").read_text()
    (features / f"{GROUP}.sql").write_text(sql.replace(
        "    AVG(CAST(fee AS DOUBLE)) AS avg_fee_1min\n",
        "    AVG(CAST(fee AS DOUBLE)) AS avg_fee_1min,\n    MAX(fee) AS max_fee_1min\n"))
    resumed = subprocess.run(run_args(run_dir, *run, "--speed", "0", "--exit-when-done"), env=cli_env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 1
    errors = error_lines(resumed.stderr)
    assert len(errors) == 1 and "gained max_fee_1min" in errors[0] and "--reset-job" in errors[0], resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stderr
    assert "max_fee_1min" not in FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url)).describe(GROUP).features

    again = subprocess.run(run_args(run_dir, *run, "--reset-job", "--speed", "0", "--exit-when-done", "--format", "json"),
                           env=cli_env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    (group,) = [g for g in feature_groups(DataDir(data_dir).featurestore) if g.name == GROUP]
    assert list(group.features)[-1] == "max_fee_1min" and group.features["max_fee_1min"].value == "Integral"

    results = reference_for(short_recording)  # a replay at speed 0 keeps the recording's own times
    max_fee = {row["tx_minute"]: row["max_fee"] for row in tumbling(
        results.unique, 60, lambda start, end, rows: {"tx_minute": minute_key(start),
                                                      "max_fee": max(row["fee"] for row in rows)})}
    expected = {key: {**row, "max_fee_1min": max_fee[key]} for key, row in results.complete_features.items()}
    server.store.flush_offline()
    columns, after = run_query(DataDir(data_dir).featurestore, f"SELECT * FROM {GROUP}")
    assert columns[-1] == "hour" and "max_fee_1min" in columns
    records = [dict(zip(columns, row)) for row in after]
    held = sorted((record for record in records if record["max_fee_1min"] is None), key=repr)
    assert before and held == sorted(({**row, "max_fee_1min": None} for row in before), key=repr)  # all still there
    written = {record["tx_minute"]: record for record in records if record["max_fee_1min"] is not None}
    assert written.keys() == expected.keys()  # every window of the run, with the new column
    assert {key: {k: written[key][k] for k in row} for key, row in expected.items()} == expected
    online = online_rows(server.url, GROUP)
    assert online.keys() >= held_online.keys()  # no record of the group went missing
    assert {key: online[key] for key in expected} == expected  # the windows recomputed, new column included


def _windows_offline(data_dir: Path) -> int:
    try:
        return len(offline_features(data_dir))
    except OfflineQueryError:  # the run has not created the group yet
        return 0
