"""The real job (sql/ + the Python feature-store writer) on a real Flink MiniCluster, checked row by row
against the independent reference in tests/reference.py."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from connectors.atomic_files import atomic_write
from connectors.blockchain.source import Poll, read_recording
from connectors.blockchain.synthetic import SyntheticProfile
from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig
from connectors.flink_rest import FlinkRest, FlinkRestError
from job.flow.config import JobConfig, load_property_groups
from job.flow.pipeline import build_pipeline
from job.flow.sql_files import FEATURES_DIR
from job.local.monitor import SIGHTINGS_OPERATOR
from tests.reference import expected_results
from tests.support import (
    GROUP,
    MALFORMED,
    T0,
    free_port,
    min_input_watermark,
    online_rows,
    publish,
    reference_input,
    scenario,
    sink_rows,
    tx,
    tx_id,
)
from tests.support.example_features import (
    ADDRESSES,
    EXAMPLES,
    by_key,
    example_windows,
    features_with_examples,
    newest_online,
    store_state,
    write_relayed_recording,
)

pytestmark = pytest.mark.slow

def job_config(data_dir: Path, url: str, flink: dict[str, str] | None = None, **overrides) -> JobConfig:
    return JobConfig.from_properties(
        load_property_groups(), data_dir, featurestore_endpoint_url=url,
        extra_flink_config={"execution.checkpointing.interval": "1 s", **(flink or {})}, **overrides,
    )


def wait_for(condition, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except FlinkRestError:
            pass  # the job is still starting
        time.sleep(0.3)
    raise AssertionError(f"condition not met within {timeout_s:.0f}s")


def custom_metrics(rest: FlinkRest, job_id: str) -> dict[str, float]:
    """The job's kinesisanalytics.chainfeat.* metrics, by name, summed over operators and subtasks."""
    totals: dict[str, float] = {}
    for metric_id, value in rest.operator_metrics(job_id, r"\.kinesisanalytics\.chainfeat\.\w+$").items():
        name = metric_id.rsplit(".", 1)[1]
        totals[name] = totals.get(name, 0.0) + value
    return totals


def run_bounded(data_dir: Path, url: str, **overrides) -> None:
    pipeline = build_pipeline(job_config(data_dir, url, monitor_interval_s=None, **overrides))
    client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=url))
    for definition in pipeline.feature_groups:
        client.ensure_feature_group(definition)
    pipeline.execute_async("test").get_job_execution_result().result()


def dead_letter_entries(data_dir: Path) -> list[tuple[str, str]]:
    """(what was rejected, reason) as sortable JSON text: lines that are JSON are compared as values."""
    entries = []
    for row in sink_rows(data_dir / "dead_letter"):
        try:
            value = json.loads(row["line"])
        except ValueError:
            value = row["line"]
        entries.append((json.dumps(value, sort_keys=True), row["reason"]))
    return sorted(entries)


def test_duplicates_out_of_order_late_and_malformed(server, data_dir, tmp_path) -> None:
    polls = scenario()
    publish(data_dir, polls)
    features = tmp_path / "features"  # the shipped group, and one over the transactions' outputs (read apart)
    features.mkdir()
    for source in (FEATURES_DIR / f"{GROUP}.sql", FEATURES_DIR / "examples" / "address_minute.sql"):
        shutil.copy(source, features)
    run_bounded(data_dir, server.url, features_dir=features)
    expected = expected_results(reference_input(polls))

    assert online_rows(server.url, GROUP) == expected.features
    # Every address is paid once: its one minute. G (late), B and C's repeats, the malformed entries are not there.
    received = [window.row for window in example_windows(expected.unique)["address_minute"]]
    assert online_rows(server.url, "address_minute") == {row["address"]: row for row in received}
    assert sorted(received, key=lambda row: row["address"])[0] == {
        "address": "bc1q-A-out", "event_time": T0 + 60.0, "nb_outputs_1min": 1, "nb_trx_1min": 1, "total_received_1min": 9_000}
    assert len(received) == len(expected.unique) == 8  # A, B, C, D, E, F, H, I (the second outputs have no address)
    assert dead_letter_entries(data_dir) == sorted((json.dumps(value, sort_keys=True), reason)
                                                   for value, reason in expected.dead_letter)
    late = sink_rows(data_dir / "late")
    assert sorted(row["hash"] for row in late) == sorted(expected.late)
    assert late[0]["fee"] == 20 and late[0]["input_count"] == 1 and late[0]["output_count"] == 2  # typed, whole
    assert sink_rows(data_dir / "progress") == [{"publication": 1, "polled_at": T0 + 260}]

    # The reference agrees with what the scenario was built to show (so neither can be trivially wrong):
    assert expected.late == [tx_id("G")]
    assert len(expected.dead_letter) == len(MALFORMED) + 1
    assert {reason for _line, reason in expected.dead_letter} == {
        "not a JSON object", "missing hash", "missing time", "missing fee", "fee is not an integer",
        "negative fee", "time is not an integer", "time is not a unix time up to 600 s after the poll",
        "size is not an integer", "ver is not an integer", "double_spend is not a boolean", "inputs is not a list",
        "inputs[] is not a JSON object", "inputs[].prev_out.addr is not a string", "out[].value is not an integer",
        "hash is not a string", "poll is not valid JSON", "hash is not 64 lowercase hex characters",
        "time is more than 1209600 s before the poll (older than any unconfirmed transaction)",
    }
    assert expected.features["2024-05-01 00:00:00"]["total_nb_trx_1min"] == 4  # A, B, C, E once each
    assert expected.features["2024-05-01 00:00:00"]["total_fee_1min"] == 670
    assert expected.duplicates == 2  # B in poll 1, C in poll 2 (G's repeat is late)


def test_at_parallelism_two_with_one_reading_subtask_the_results_are_the_references(server, data_dir, tmp_path) -> None:
    """Parallelism N > 1 as Managed Flink runs it (`chainfeat submit --parallelism N`): the stream is one shard, so
    one source subtask reads everything and the others hold no split. Lateness is judged beside the reading subtask,
    with its watermark, as at parallelism 1; the keyed operators after it (dedup, windows, a per-entity group's
    writer) run at N. Here the feed is one file (one split) at parallelism 2: late, duplicate and malformed
    transactions come out as the reference says (docs/deploying.md "Parallelism")."""
    from pyflink.table import ExplainDetail

    polls = scenario()
    publish(data_dir, polls)
    features = tmp_path / "features"  # a group per minute, and one per address (keyed: its writer runs at N)
    features.mkdir()
    for source in (FEATURES_DIR / f"{GROUP}.sql", FEATURES_DIR / "examples" / "address_minute.sql"):
        shutil.copy(source, features)
    two = {"parallelism.default": "2", "taskmanager.numberOfTaskSlots": "2"}
    pipeline = build_pipeline(job_config(data_dir, server.url, two, monitor_interval_s=None, features_dir=features))
    plan = json.loads(pipeline.statement_set.explain(ExplainDetail.JSON_EXECUTION_PLAN).split(
        "== Physical Execution Plan ==")[-1].strip())
    parallel = {node["contents"].split("(")[0].split("]:")[-1] for node in plan["nodes"] if node["parallelism"] == 2}
    assert {SIGHTINGS_OPERATOR, "LocalWindowAggregate", "GlobalWindowAggregate", "PythonCalc"} <= parallel, parallel
    address_writer = [node for node in plan["nodes"] if "chainfeat_write_address_minute" in node["contents"]]
    assert [node["parallelism"] for node in address_writer] == [2]
    client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url))
    for definition in pipeline.feature_groups:
        client.ensure_feature_group(definition)
    pipeline.execute_async("parallelism-2").get_job_execution_result().result()
    expected = expected_results(reference_input(polls))
    assert online_rows(server.url, GROUP) == expected.features
    received = [window.row for window in example_windows(expected.unique)["address_minute"]]
    assert online_rows(server.url, "address_minute") == {row["address"]: row for row in received}
    assert sorted(row["hash"] for row in sink_rows(data_dir / "late")) == sorted(expected.late) == [tx_id("G")]
    assert dead_letter_entries(data_dir) == sorted((json.dumps(value, sort_keys=True), reason)
                                                   for value, reason in expected.dead_letter)


def test_feature_group_is_derived_from_the_sql(server, data_dir) -> None:
    pipeline = build_pipeline(job_config(data_dir, server.url, monitor_interval_s=None))
    (definition,) = pipeline.feature_groups
    assert definition.name == GROUP
    assert definition.record_identifier == "tx_minute"
    assert definition.event_time_feature == "event_time"
    assert {name: kind.value for name, kind in definition.features.items()} == {
        "tx_minute": "String",
        "event_time": "Fractional",
        "total_nb_trx_1min": "Integral",
        "total_fee_1min": "Integral",
        "avg_fee_1min": "Fractional",
    }


def test_windows_close_during_an_idle_pause(server, data_dir) -> None:
    """No transaction for minutes, only polls' heartbeats: the open windows must still be written."""
    rest_port = free_port()
    pipeline = build_pipeline(job_config(data_dir, server.url, monitor_interval_s=0.2), rest_port=rest_port)
    rest = FlinkRest(f"http://127.0.0.1:{rest_port}")
    client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url))
    for definition in pipeline.feature_groups:
        client.ensure_feature_group(definition)
    busy = [Poll(T0 + 20, [tx("A", 5, 100), tx("B", 50, 200)]), Poll(T0 + 30, page=b"not json"),
            Poll(T0 + 80, [tx("C", 70, 40)])]
    feed = data_dir / "feed"

    def write(number: int, polls: list[Poll]) -> None:
        atomic_write(feed / f"feed-{number:09d}.jsonl", b"".join(poll.lines.text for poll in polls))

    job = pipeline.execute_async("idle-pause")
    try:
        write(1, busy)
        # Wait until the job has read it (its watermark reached the last heartbeat, T0+80, minus 60 s).
        wait_for(lambda: (min_input_watermark(rest, str(job.get_job_id()), SIGHTINGS_OPERATOR) or 0) >= (T0 + 20) * 1000)
        time.sleep(2)
        assert online_rows(server.url, GROUP) == {}  # a watermark of T0+20 closes no window
        idle = [Poll(T0 + 140, []), Poll(T0 + 200, [])]  # empty polls: heartbeats only
        write(2, idle)
        expected = expected_results(reference_input(busy + idle)).features
        wait_for(lambda: online_rows(server.url, GROUP) == expected)
        assert sorted(expected) == ["2024-05-01 00:00:00", "2024-05-01 00:01:00"]
        assert str(job.get_job_status().result()).endswith("RUNNING")

        # The job's own metrics (what CloudWatch shows on Managed Flink): a transaction behind the
        # watermark is counted late, the malformed poll dead-lettered, the two windows written.
        write(3, [Poll(T0 + 210, [tx("L", 10, 5)])])
        job_id = str(job.get_job_id())
        wait_for(lambda: custom_metrics(rest, job_id).get("late_records") == 1)
        metrics = custom_metrics(rest, job_id)
        assert metrics["dead_letter_records"] == 1 and metrics["features_written"] == 2
        newest_event_time = max(row["event_time"] for row in expected.values())
        assert 0 <= time.time() - newest_event_time - metrics["freshness_s"] < 60
        # A real BatchWriteRecord round trip was timed: at least a millisecond even to a local server, and not stale.
        assert 1 <= metrics["put_latency_ms"] < 10_000 and metrics["put_retries"] == 0
        # No Python function in the source's task (sql/sinks/dead_letter.sql): the source need not wait for the
        # Python worker to start; the dead-letter counter, in a task of its own, counted above.
        (source_task,) = [vertex["name"] for vertex in rest.job(job_id)["vertices"]
                          if vertex["name"].startswith("Source:")]
        assert "PythonCalc" not in source_task, source_task
    finally:
        job.cancel().result()


def test_per_address_features_over_the_outputs_match_the_reference(server, control, data_dir, tmp_path) -> None:
    """The per-address example (sql/features/examples/address_minute.sql, over unique_outputs) beside the shipped
    group, on 4 minutes of a recording whose outputs pay a few addresses: every (address, minute) offline and each
    address's newest minute online, as the reference computes them from the raw pages. And a List feature: each
    minute's input addresses (examples/input_addresses_minute.sql, an ARRAY<STRING> column), in an InMemory group."""
    recording = write_relayed_recording(tmp_path / "addresses.jsonl", SyntheticProfile(duration_s=240, seed=3))
    polls = list(read_recording(recording))
    publish(data_dir, polls)
    features = tmp_path / "features"
    features.mkdir()
    for source in (FEATURES_DIR / f"{GROUP}.sql", FEATURES_DIR / "examples" / "address_minute.sql",
                   FEATURES_DIR / "examples" / "input_addresses_minute.sql"):
        shutil.copy(source, features)
    run_bounded(data_dir, server.url, features_dir=features)

    expected = expected_results(reference_input(polls))
    windows = example_windows(expected.unique)
    rows = [window.row for window in windows["address_minute"]]
    state = store_state(data_dir, [GROUP, "address_minute", "input_addresses_minute"], server)
    listed = [window.row for window in windows["input_addresses_minute"]]
    assert state["input_addresses_minute"]["offline"] == by_key(listed)
    assert state["input_addresses_minute"]["online"] == newest_online(listed)
    assert all(len(row["input_addresses"]) > 1 for row in listed)  # lists, not one address per minute
    described = control.describe_feature_group(FeatureGroupName="input_addresses_minute")
    assert described["OnlineStoreConfig"]["StorageType"] == "InMemory"
    assert described["FeatureDefinitions"][2] == {"FeatureName": "input_addresses", "FeatureType": "String",
                                                  "CollectionType": "List"}
    assert state["address_minute"]["offline"] == by_key(rows)
    assert state["address_minute"]["online"] == newest_online(rows)
    assert state[GROUP]["online"] == expected.features
    # The reference agrees with what the recording was built to show: every address receives in every minute, and
    # some outputs have no address (left out) or pay an address twice in one transaction (nb_outputs > nb_trx).
    minutes = {row["event_time"] for row in rows}
    assert len(minutes) >= 5 and len(rows) == len(minutes) * len(ADDRESSES)
    assert any(row["nb_outputs_1min"] > row["nb_trx_1min"] for row in rows)
    outputs = [entry for row in expected.unique for entry in row["outputs"]]
    assert sum(row["nb_outputs_1min"] for row in rows) < len(outputs)


def _dedup_inputs(plan: str) -> list[list[str]]:
    """The columns each deduplication of an explained job takes in: the select list of the first Calc below its
    exchange (the columns that cross the exchange and sit in its state). The transactions' dedup numbers the sightings
    (a window Top-N, sql/dedup.sql); the lists' keeps the first (a window Top-N of one, sql/inputs_outputs.sql: ordered
    by ts and polled_at, which Flink plans as a Top-N, not as a window deduplication)."""
    lines = plan.split("== Optimized Execution Plan ==")[-1].splitlines()
    columns = []
    for number, line in enumerate(lines):
        if f"{SIGHTINGS_OPERATOR}(" in line:
            below = next(text for text in lines[number + 2:] if "Calc(select=[" in text)
            columns.append(below.split("Calc(select=[", 1)[1].split("]", 1)[0].split(", "))
    return columns


def _source_columns(plan: str) -> set[str]:
    """The columns the job's source decodes (the json format skips the others)."""
    scans = {line.split("fields=[", 1)[1].split("]", 1)[0] for line in plan.splitlines() if "TableSourceScan(" in line}
    (fields,) = scans
    return set(fields.split(", "))


def test_inputs_and_outputs_cost_only_the_jobs_whose_features_use_them(server, data_dir, tmp_path) -> None:
    """The job's plan. With the shipped group and the examples that do not read inputs or outputs, the json format
    does not even decode them, and nothing is unnested. Add the per-address example: its view is computed once (for
    both its outputs, the store's writer and computed windows), by a deduplication of its own that carries the
    outputs only, and the transactions' deduplication still carries no list."""
    features = features_with_examples(tmp_path / "features")
    (features / "address_minute.sql").unlink()
    without = build_pipeline(job_config(data_dir, server.url, monitor_interval_s=None, features_dir=features))
    plan = without.statement_set.explain()
    assert "Correlate(" not in plan and "UNNEST" not in plan
    assert "fee" in _source_columns(plan) and not {"inputs", "outputs"} & _source_columns(plan)
    (columns,) = _dedup_inputs(plan)
    assert "relayed_by" in columns and not {"inputs", "outputs"} & set(columns)

    shutil.copy(FEATURES_DIR / "examples" / "address_minute.sql", features)
    assert len(list(features.glob("*.sql"))) == 1 + len(EXAMPLES)
    with_lists = build_pipeline(job_config(data_dir, server.url, monitor_interval_s=None, features_dir=features))
    plan = with_lists.statement_set.explain()
    assert plan.split("== Optimized Execution Plan ==")[-1].count("Correlate(") == 1
    assert {"inputs", "outputs"} <= _source_columns(plan)
    transactions, lists = sorted(_dedup_inputs(plan), key=lambda columns: "outputs" in columns)
    assert not {"inputs", "outputs"} & set(transactions)
    assert "outputs" in lists and "inputs" not in lists and "fee" not in lists
