"""`chainfeat backfill` as a user runs it (a subprocess) over the spool of a replayed recording: the complete windows
the streaming job wrote, row by row, and nothing else; idempotent over the streaming job's store, after an
interruption, and over a range (only the archive's hours it needs are read); the Firehose archive's layout; one message
for a broken feature file, an unknown group, a file outside the archive's layout.

One streaming run (module-scoped) gives the spool and the store every test compares with; the expected windows
and the edge rule are restated here over the independent reference (tests/reference.py)."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from connectors.blockchain.source import read_recording
from connectors.blockchain.synthetic import SyntheticProfile
from connectors.kinesis.producer import poll_records
from job.local.data_dir import DataDir
from tests.conftest import CHAINFEAT
from tests.reference import expected_results
from tests.support import GROUP, alive, cli_environment, descendants, error_lines, free_port, properties_with_store
from tests.support.example_features import (
    EXAMPLES,
    Window,
    by_key,
    example_windows,
    features_with_examples,
    newest_online,
    store_state,
    write_feature_with_unknown_column,
    write_relayed_recording,
)

# One test worker takes the whole module ("make test" runs them in parallel): the module's streamed recording (a streaming run) is made once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("backfill")]

GROUPS = [GROUP, *EXAMPLES]
WINDOW_KEYED = [GROUP, "size_5min", "fee_10min_so_far"]  # the record identifier is the window: written once offline
PROFILE = SyntheticProfile(duration_s=900, seed=5)
WATERMARK_DELAY_S = 60  # job/flow/application_properties.json


@dataclass
class Streamed:
    data_dir: Path
    features: Path
    env: dict
    state: dict  # what the streaming job left in its store (store_state)
    windows: dict[str, list[Window]]  # every window the reference computes, per group
    first_poll: float
    covered_to: float  # the last poll minus the watermark delay
    transactions: int
    duplicates: int
    summary: dict  # the streaming run's

    @property
    def spool(self) -> Path:
        return self.data_dir / "spool"

    def complete(self, group: str, start: float | None = None, end: float | None = None) -> list[Window]:
        """The README's edge rule, restated: a window is complete if it starts at or after the first poll (and
        --from) and ends at or before the last poll minus the watermark delay (and --to)."""
        since = max(self.first_poll, start if start is not None else float("-inf"))
        until = min(self.covered_to, end if end is not None else float("inf"))
        return [window for window in self.windows[group] if window.start >= since and window.end <= until]


def backfill(env: dict, data_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CHAINFEAT, "backfill", "--data-dir", str(data_dir), "--dashboard-port", str(free_port()), *args],
                          env=env, capture_output=True, text=True, timeout=timeout)


def approx(rows: dict) -> dict:
    """Rows with their floats compared up to summation order (the reference sums in Python)."""
    return {key: {name: pytest.approx(value, rel=1e-12) if isinstance(value, float) else value
                  for name, value in row.items()} for key, row in rows.items()}


@pytest.fixture(scope="module")
def streamed(tmp_path_factory) -> Streamed:
    root = tmp_path_factory.mktemp("backfill")
    recording = write_relayed_recording(root / "relayed.jsonl", PROFILE)
    features = features_with_examples(root / "features")
    data_dir = root / "streamed"
    env = cli_environment(data_dir)
    result = subprocess.run(
        [*CHAINFEAT, "run", "--data-dir", str(data_dir), "--recording", str(recording), "--speed", "0",
         "--exit-when-done", "--features", str(features), "--dashboard-port", str(free_port()),
         "--featurestore-port", "0", "--format", "json"],
        env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["late"] == 0  # so the streaming job's windows are the whole archive's
    polls = list(read_recording(recording))
    reference = expected_results([(poll.polled_at, json.loads(poll.page)) for poll in polls])
    return Streamed(data_dir, features, env, store_state(data_dir, GROUPS), example_windows(reference.unique),
                    first_poll=min(poll.polled_at for poll in polls),
                    covered_to=max(poll.polled_at for poll in polls) - WATERMARK_DELAY_S,
                    transactions=sum(len(poll.txs) for poll in polls), duplicates=reference.duplicates,
                    summary=json.loads(result.stdout))


def expected_state(streamed: Streamed, groups: list[str] = GROUPS, start: float | None = None,
                   end: float | None = None) -> dict[str, dict]:
    """What a store holds after a backfill that wrote the complete windows of ``groups`` (and nothing else)."""
    expected = {}
    for group in groups:
        rows = [window.row for window in streamed.complete(group, start, end)]
        expected[group] = {"online": approx(newest_online(rows)), "offline": approx(by_key(rows))}
    return expected


def without_row_counts(state: dict) -> dict:
    return {group: {"online": held["online"], "offline": held["offline"]} for group, held in state.items()}


def firehose_archive(spool: Path, target: Path) -> Path:
    """The spool in the layout Firehose writes from the Kinesis stream (infra/stacks/ingestion.py): gzip objects under
    raw/date=/hour=/, each the poller's records one after the other, a record per poll = the JSON array of its lines
    and a newline (connectors/kinesis/producer.py)."""
    for path in sorted(spool.rglob("poll-*.jsonl")):
        records, poll = [], []
        for line in path.read_bytes().splitlines():
            poll.append(line)
            if json.loads(line).get("heartbeat"):  # a poll's lines end with its heartbeat
                records += poll_records(poll)
                poll = []
        assert not poll
        partition = target / "raw" / path.parent.parent.name / path.parent.name
        partition.mkdir(parents=True, exist_ok=True)
        (partition / f"chainfeat-raw-archive-1-{path.stem}.gz").write_bytes(gzip.compress(b"".join(records)))
    return target / "raw"


def test_the_streaming_job_writes_exactly_the_complete_windows_a_backfill_writes(streamed) -> None:
    """One edge rule for both: the streaming run wrote the complete windows of every group (the reference's, row by
    row) and skipped the partial ones at both edges of the replay, and says so in its summary."""
    assert without_row_counts(streamed.state) == expected_state(streamed)
    summary = streamed.summary
    for group in GROUPS:
        complete = streamed.complete(group)
        partial = len(streamed.windows[group]) - len(complete)
        assert complete and partial > 0, group
        assert (summary["windows_computed"][group], summary["windows_written"][group],
                summary["windows_skipped_partial"][group]) == (len(complete), len(complete), partial), group
    assert summary["window_shapes"]["size_5min"] == "HOP 5 min every 1 min"
    assert [summary["covered_from"], summary["covered_to"]] == [
        datetime.fromtimestamp(int(moment), tz=timezone.utc).isoformat().replace("+00:00", "Z")  # ISO 8601 UTC
        for moment in (streamed.first_poll, streamed.covered_to)]


def test_a_backfill_over_what_the_streaming_job_wrote_changes_nothing(streamed) -> None:
    """The streaming job's own data dir: the backfill reads its spool and starts its store, as `run` does."""
    result = backfill(streamed.env, streamed.data_dir, "--features", str(streamed.features), "--format", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    state = store_state(streamed.data_dir, GROUPS)
    assert without_row_counts(state) == without_row_counts(streamed.state)
    for group in WINDOW_KEYED:  # the writer skipped every window the store held as it is: nothing appended
        assert state[group]["offline_rows"] == streamed.state[group]["offline_rows"], group
    for group in GROUPS:
        complete = streamed.complete(group)
        partial = len(streamed.windows[group]) - len(complete)
        assert complete and partial > 0, group  # the archive has edges: both kinds of windows occur
        assert (summary["windows_written"][group], summary["windows_skipped_partial"][group]) == (len(complete), partial)
    assert summary["window_shapes"] == {GROUP: "TUMBLE 1 min", "size_5min": "HOP 5 min every 1 min",
                                        "relay_minute": "TUMBLE 1 min", "fee_10min_so_far": "CUMULATE 10 min by 1 min",
                                        "address_minute": "TUMBLE 1 min"}
    assert (summary["transactions"], summary["duplicates"], summary["dead_letter"]) == (
        streamed.transactions, streamed.duplicates, 0)
    covered = [datetime.fromisoformat(summary[key]).timestamp() for key in ("covered_from", "covered_to")]
    assert all(summary[key].endswith("Z") for key in ("covered_from", "covered_to"))  # ISO 8601, UTC
    assert covered == [int(streamed.first_poll), int(streamed.covered_to)]


def test_ranges_an_interruption_and_a_rerun_leave_exactly_the_complete_windows(streamed, server, data_dir, tmp_path) -> None:
    """A fresh store, three backfills: (1) --from (ISO 8601, not on a minute) and --to (unix seconds) with two --group,
    over the archive in Firehose's layout: the complete windows inside the range of those groups, nothing else;
    (2) every group over the spool, Ctrl-C while the windows are being written (the store answers each write 2 s
    late); (3) the same command again: exactly the complete windows of the whole archive — the streaming job's, row
    by row, and the reference's — each once offline, the partial edge windows nowhere."""
    start = streamed.first_poll + 150.5
    end = start + 420
    ranged = [GROUP, "size_5min"]
    archive = firehose_archive(streamed.spool, tmp_path / "s3-bucket")
    lines = sum(len(path.read_bytes().splitlines()) for path in streamed.spool.rglob("poll-*.jsonl"))
    # Hours no transaction of the range can have been polled in (years before --from, and after --to + 14 days)
    # hold copies of the archive's first object: read, they would add lines, and sightings inside the range.
    first_object = min(archive.rglob("*.gz"))
    for hour in ("date=2020-01-01/hour=00", "date=2099-12-31/hour=23"):
        (archive / hour).mkdir(parents=True)
        (archive / hour / first_object.name).write_bytes(first_object.read_bytes())
    result = backfill(streamed.env, data_dir, "--archive", archive.as_uri(), "--features", str(streamed.features),
                      "--from", datetime.fromtimestamp(start, tz=timezone.utc).isoformat(), "--to", str(end),
                      *[option for group in ranged for option in ("--group", group)], "--endpoint-url", server.url,
                      "--format", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert without_row_counts(store_state(data_dir, ranged, server)) == expected_state(streamed, ranged, start, end)
    assert all(streamed.complete(group, start, end) for group in ranged)
    assert summary["windows_written"] == {group: len(streamed.complete(group, start, end)) for group in ranged}
    assert summary["transactions"] < streamed.transactions  # the range's only
    assert summary["lines_read"] == lines  # the archive's own hours only: the two outside the range pruned
    assert sorted(group.name for group in server.store.definitions()) == sorted(ranged)  # the others not even created

    args = ["--archive", str(streamed.spool), "--features", str(streamed.features), "--endpoint-url", server.url,
            "--format", "json"]
    before = sum(server.store.online_count(group) for group in ranged)
    server.app.faults.arm(1000, "slow", writes_only=True, delay_s=2.0)
    # One call in flight per writer, so that an interruption finds calls not yet made.
    one_at_a_time = properties_with_store(server.url, tmp_path, write_concurrency=1)
    first = subprocess.Popen([*CHAINFEAT, "backfill", "--data-dir", str(data_dir), "--dashboard-port", str(free_port()), *args,
                              "--properties", str(one_at_a_time)],
                             env=streamed.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while sum(server.store.online_count(group.name) for group in server.store.definitions()) <= before:
            assert first.poll() is None, f"the backfill ended early: {first.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "no window written in time"
            time.sleep(0.1)
        below = descendants(first.pid)  # the JVM and its Python workers
        first.send_signal(signal.SIGINT)
        _stdout, stderr = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 130, stderr[-3000:]
    assert "run the same command again" in stderr
    deadline = time.monotonic() + 30
    while alive(below) and time.monotonic() < deadline:  # nothing left behind that could still write
        time.sleep(0.5)
    assert alive(below) == []
    expected = expected_state(streamed)
    interrupted = store_state(data_dir, [group.name for group in server.store.definitions()], server)
    # Stopped mid-way: the groups write side by side, each answer 2 s late, and relay_minute's windows take two calls.
    assert sum(len(held["offline"]) for held in interrupted.values()) < sum(len(held["offline"]) for held in expected.values())

    server.app.faults.arm(0)
    again = backfill(streamed.env, data_dir, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    finished = store_state(data_dir, GROUPS, server)
    assert without_row_counts(finished) == expected  # the reference's complete windows, nothing else
    for group in GROUPS:  # row by row what the streaming job wrote for them (its store also has the partial ones)
        assert finished[group]["offline"] == {key: streamed.state[group]["offline"][key] for key in finished[group]["offline"]}
    for group in WINDOW_KEYED:  # nothing doubled: each window once offline, the ones the range wrote included
        assert finished[group]["offline_rows"] == len(expected[group]["offline"]), group


def test_a_broken_feature_file_or_an_unknown_group_is_one_error(streamed, tmp_path) -> None:
    features, expected_error = write_feature_with_unknown_column(tmp_path / "features")
    target = tmp_path / "broken"
    result = backfill(streamed.env, target, "--archive", str(streamed.spool), "--features", str(features))
    assert result.returncode == 1
    errors = error_lines(result.stderr)
    assert errors == [f"error: {expected_error}"], result.stderr
    assert "Traceback" not in result.stderr and "\tat org.apache" not in result.stderr
    assert not DataDir(target).backfill_windows.exists()  # the job never ran

    unknown = backfill(streamed.env, target, "--archive", str(streamed.spool), "--group", "no_such_group")
    assert unknown.returncode == 2
    assert "no feature file for no_such_group" in unknown.stderr and GROUP in unknown.stderr

    # A file outside the date=/hour= directories would be left out by Flink's partitioned read: refused, named.
    loose = tmp_path / "loose-archive"
    (loose / "date=2024-05-01" / "hour=09").mkdir(parents=True)
    for path in (loose / "date=2024-05-01" / "hour=09" / "poll-1.jsonl", loose / "polls.jsonl"):
        path.write_bytes(min(streamed.spool.rglob("poll-*.jsonl")).read_bytes())
    refused = backfill(streamed.env, target, "--archive", str(loose))
    assert refused.returncode == 1
    assert error_lines(refused.stderr) == [
        f"error: 1 file(s) in {loose} are not in the archive's layout date=YYYY-MM-DD/hour=HH/ (e.g. polls.jsonl): move "
        "them into their hour's directory, or give --archive the directory that holds date=..."], refused.stderr


def test_a_backfill_finds_its_windows_once_for_the_same_statements(tmp_path, monkeypatch) -> None:
    """Each group's window comes from planning its view (explain()); the plan cache keeps them for the next backfill
    of the same statements, in any data dir, and an edited feature file is planned again."""
    import job.flow.window_shapes as window_shapes
    from job.flow.backfill import BackfillSettings, build_backfill
    from job.flow.config import JobConfig, load_property_groups
    from job.flow.plan_cache import PlanCache
    from udfs.coverage import WindowShape

    cache = PlanCache(tmp_path / "plans")

    def shapes_for(data_dir: Path, features: Path) -> dict:
        config = JobConfig.from_properties(load_property_groups(), data_dir, featurestore_endpoint_url="http://127.0.0.1:9",
                                           monitor_interval_s=None)
        settings = BackfillSettings(archive_uri=(data_dir / "spool").as_uri(), report_uri=(data_dir / "report").as_uri())
        return build_backfill(config, settings, sorted(features.glob("*.sql")), plan_cache=cache).windows

    features = features_with_examples(tmp_path / "features")
    found = shapes_for(tmp_path / "a", features)
    assert found["size_5min"] == WindowShape("HOP", 300, 60) and found["fee_10min_so_far"].kind == "CUMULATE"

    def planned(*args):
        raise AssertionError("planned again")

    with monkeypatch.context() as patched:
        patched.setattr(window_shapes, "feature_window", planned)
        assert shapes_for(tmp_path / "b", features) == found  # another data dir and archive: the same statements

    hop = features / "size_5min.sql"
    hop.write_text(hop.read_text().replace("INTERVAL '5' MINUTE", "INTERVAL '10' MINUTE"))
    assert shapes_for(tmp_path / "c", features)["size_5min"] == WindowShape("HOP", 600, 60)


def test_the_backfill_reads_the_archive_once_and_decodes_only_what_its_features_use(tmp_path) -> None:
    """The batch job's plan (bench/HISTORY.md, 2026-12-07 backfill speed): one scan of the archive; without a feature
    over inputs or outputs the json format skips those lists (a second reader of source_lines would make Flink decode
    them for every line); the dead letter goes from the reading straight to its sink (no Python counter, no sort); the
    report's counts are two aggregations, not one per count."""
    from job.flow.backfill import BackfillSettings, build_backfill
    from job.flow.config import JobConfig, load_property_groups
    from job.flow.plan_cache import PlanCache

    config = JobConfig.from_properties(load_property_groups(), tmp_path, featurestore_endpoint_url="http://127.0.0.1:9",
                                       monitor_interval_s=None)
    hour = tmp_path / "spool" / "date=2024-05-01" / "hour=00"  # a partition to plan a scan of (no file: no scan)
    hour.mkdir(parents=True)
    (hour / "poll-1.jsonl").write_text('{"heartbeat": true, "time": 1714521600, "polled_at": 1714521600.0}\n')
    settings = BackfillSettings(archive_uri=(tmp_path / "spool").as_uri(), report_uri=(tmp_path / "report").as_uri())
    features = features_with_examples(tmp_path / "features")
    without_lists = [path for path in sorted(features.glob("*.sql")) if path.stem != "address_minute"]
    plan = build_backfill(config, settings, without_lists, plan_cache=PlanCache(tmp_path / "plans")).pipeline \
        .statement_set.explain().split("== Optimized Execution Plan ==")[-1]
    (scan,) = [line for line in plan.splitlines() if "TableSourceScan(" in line]
    fields = set(scan.split("fields=[", 1)[1].split("]", 1)[0].split(", "))
    assert {"hash", "fee", "time", "polled_at", "heartbeat"} <= fields and not {"inputs", "outputs"} & fields
    assert "count_dead_letter" not in plan and "PythonCalc(select=[chainfeat_write_" in plan
    dead_letter = plan.split("Sink(table=[default_catalog.default_database.dead_letter_sink]")[1].split("\n\n")[0]
    assert "Sort(" not in dead_letter and "OverAggregate(" not in dead_letter
    # the report: the lines' aggregation (coverage, lines, dead letter) and the sightings' (transactions, unique)
    assert plan.count("LocalHashAggregate(select=[") == 2

    with_lists = build_backfill(config, settings, sorted(features.glob("*.sql")), plan_cache=PlanCache(tmp_path / "plans"))
    plan = with_lists.pipeline.statement_set.explain().split("== Optimized Execution Plan ==")[-1]
    (scan,) = [line for line in plan.splitlines() if "TableSourceScan(" in line]
    assert {"inputs", "outputs"} <= set(scan.split("fields=[", 1)[1].split("]", 1)[0].split(", "))
