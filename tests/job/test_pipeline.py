"""The real job (sql/ + the Python feature-store writer) on a real Flink MiniCluster, checked row by row
against the independent reference in tests/reference.py."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from connectors.blockchain.source import Poll
from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig
from connectors.spool import atomic_write, poll_lines
from job.config import JobConfig, load_property_groups
from job.flink_rest import FlinkRest, FlinkRestError
from job.pipeline import build_pipeline
from tests.reference import expected_results

pytestmark = pytest.mark.slow

T0 = 1714521600  # 2024-05-01 00:00:00 UTC, a minute boundary
GROUP = "tx_minute_features"


def tx(tx_hash: str, offset_s: int, fee) -> dict:
    return {"hash": tx_hash, "time": T0 + offset_s, "fee": fee, "size": 250, "vin_sz": 1, "vout_sz": 2}


def poll(offset_s: float, *txs: dict) -> list[str]:
    return poll_lines(Poll(polled_at=T0 + offset_s, txs=list(txs)))


MALFORMED = [
    "this is not json {",
    "[1, 2, 3]",
    json.dumps({"time": T0 + 66, "fee": 1, "polled_at": T0 + 70}),
    json.dumps({"hash": "no-time", "fee": 1, "polled_at": T0 + 70}),
    json.dumps({"hash": "no-fee", "time": T0 + 66, "polled_at": T0 + 70}),
    json.dumps({"hash": "fee-text", "time": T0 + 66, "fee": "abc", "polled_at": T0 + 70}),
    json.dumps({"hash": "fee-fraction", "time": T0 + 66, "fee": 1.5, "polled_at": T0 + 70}),
    json.dumps({"hash": "fee-negative", "time": T0 + 66, "fee": -5, "polled_at": T0 + 70}),
    json.dumps({"hash": "time-text", "time": "yesterday", "fee": 5, "polled_at": T0 + 70}),
    json.dumps({"hash": "time-future", "time": T0 + 100_000, "fee": 5, "polled_at": T0 + 70}),
]


def scenario_lines() -> list[str]:
    """Duplicates within and across polls, out-of-order within the watermark, late beyond it, malformed."""
    return [
        # Poll 1: newest first, as the API lists them; B twice in the same poll.
        *poll(20, tx("C", 15, 300), tx("B", 10, 200), tx("B", 10, 200), tx("A", 5, 100)),
        # Poll 2: C again (re-polled), E out of order but within the 60 s delay, then malformed lines.
        *poll(70, tx("D", 65, 50), tx("C", 15, 300), tx("E", 40, 70)),
        *MALFORMED,
        # Poll 3: F moves the watermark to T0+130; G (T0+100) is then late; H (T0+135) is on time.
        *poll(200, tx("F", 190, 10), tx("G", 100, 20), tx("H", 135, 5)),
        # Poll 4: G again (a duplicate of a late transaction), I.
        *poll(260, tx("G", 100, 20), tx("I", 250, 1)),
    ]


def job_config(data_dir: Path, url: str, **overrides) -> JobConfig:
    return JobConfig.from_properties(
        load_property_groups(), data_dir, featurestore_endpoint_url=url,
        extra_flink_config={"execution.checkpointing.interval": "1 s"}, **overrides,
    )


def sink_rows(directory: Path) -> list[dict]:
    rows = []
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.name.startswith((".", "_")):
            rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def online_features(url: str) -> dict[str, dict]:
    client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=url))
    ids = client.list_record_identifiers(GROUP)
    return {row["tx_minute"]: row for row in client.get_records(GROUP, ids)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


def run_bounded(data_dir: Path, url: str, lines: list[str]) -> None:
    atomic_write(data_dir / "feed" / "feed-000000001.jsonl", ("\n".join(lines) + "\n").encode())
    pipeline = build_pipeline(job_config(data_dir, url, monitor_interval_s=None))
    client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=url))
    for definition in pipeline.feature_groups:
        client.ensure_feature_group(definition)
    pipeline.execute_async("test").get_job_execution_result().result()


def test_duplicates_out_of_order_late_and_malformed(server, data_dir) -> None:
    lines = scenario_lines()
    run_bounded(data_dir, server.url, lines)
    expected = expected_results(lines)

    assert online_features(server.url) == expected.features
    dead = sink_rows(data_dir / "dead_letter")
    assert sorted((row["line"], row["reason"]) for row in dead) == sorted(expected.dead_letter)
    assert sorted(row["tx_hash"] for row in sink_rows(data_dir / "late")) == sorted(expected.late)

    # The reference agrees with what the scenario was built to show (so neither can be trivially wrong):
    assert expected.late == ["G"]
    assert len(expected.dead_letter) == len(MALFORMED)
    assert {reason for _line, reason in expected.dead_letter} == {
        "not a JSON object", "missing hash", "missing time", "missing fee", "fee is not an integer",
        "negative fee", "time is not a unix time up to 600 s after the poll",
    }
    assert expected.features["2024-05-01 00:00:00"]["total_nb_trx_1min"] == 4  # A, B, C, E once each
    assert expected.features["2024-05-01 00:00:00"]["total_fee_1min"] == 670


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
    busy = [*poll(20, tx("A", 5, 100), tx("B", 50, 200)), "not json", *poll(80, tx("C", 70, 40))]
    job = pipeline.execute_async("idle-pause")
    try:
        atomic_write(data_dir / "feed" / "feed-000000001.jsonl", ("\n".join(busy) + "\n").encode())
        # Wait until the job has read it (its watermark reached the last heartbeat, T0+80, minus 60 s).
        wait_for(lambda: (rest.min_input_watermark(str(job.get_job_id()), "^Deduplicate") or 0) >= (T0 + 20) * 1000)
        time.sleep(2)
        assert online_features(server.url) == {}  # a watermark of T0+20 closes no window
        idle = [*poll(140), *poll(200)]  # empty polls: heartbeats only
        atomic_write(data_dir / "feed" / "feed-000000002.jsonl", ("\n".join(idle) + "\n").encode())
        expected = expected_results(busy + idle).features
        wait_for(lambda: online_features(server.url) == expected)
        assert sorted(expected) == ["2024-05-01 00:00:00", "2024-05-01 00:01:00"]
        assert str(job.get_job_status().result()).endswith("RUNNING")

        # The job's own metrics (what CloudWatch shows on Managed Flink): a transaction behind the
        # watermark is counted late, the malformed line dead-lettered, the two windows written.
        late = poll(210, tx("L", 10, 5))
        atomic_write(data_dir / "feed" / "feed-000000003.jsonl", ("\n".join(late) + "\n").encode())
        job_id = str(job.get_job_id())
        wait_for(lambda: custom_metrics(rest, job_id).get("late_records") == 1)
        metrics = custom_metrics(rest, job_id)
        assert metrics["dead_letter_records"] == 1 and metrics["features_written"] == 2
        newest_event_time = max(row["event_time"] for row in expected.values())
        assert 0 <= time.time() - newest_event_time - metrics["freshness_s"] < 60
        assert metrics["put_latency_ms"] >= 0 and metrics["put_retries"] == 0
    finally:
        job.cancel().result()
