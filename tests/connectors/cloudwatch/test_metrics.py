"""Poller metrics in CloudWatch (moto's server): counts arrive summed, a failed send loses nothing, and
the poller service run as the container runs it reports what it polled and put on Kinesis."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from connectors.cloudwatch.metrics import CloudWatchConfig, CloudWatchCounters, StatsReporter
from connectors.retry import RetryPolicy
from tests.conftest import REPO_ROOT
from tests.support.fake_api import FakeApi, page

NAMESPACE = "chainfeat/Test"


@pytest.fixture
def cloudwatch(moto_url, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    return boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=moto_url)


def metric_sums(cloudwatch, namespace: str, dimensions: dict[str, str], names: list[str]) -> dict[str, float]:
    now = datetime.now(timezone.utc)
    sums = {}
    for name in names:
        points = cloudwatch.get_metric_statistics(
            Namespace=namespace, MetricName=name, Statistics=["Sum"], Period=3600,
            Dimensions=[{"Name": key, "Value": value} for key, value in dimensions.items()],
            StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=5))["Datapoints"]
        sums[name] = sum(point["Sum"] for point in points)
    return sums


def stream_records(kinesis, stream: str) -> int:
    shard = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    count = 0
    while True:
        response = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        count += len(response["Records"])
        if not response["Records"]:
            return count
        iterator = response["NextShardIterator"]


def test_counts_are_summed_and_a_failed_send_keeps_them(cloudwatch, moto_url) -> None:
    config = CloudWatchConfig(NAMESPACE, {"Stream": "s1"}, endpoint_url=moto_url)
    unreachable = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    counters = CloudWatchCounters(config, client=unreachable, retry=RetryPolicy(max_attempts=1))
    counters.add({"Polls": 2, "Gaps": 1})
    assert counters.flush() is False  # CloudWatch unreachable: kept, not lost
    counters.add({"Polls": 3})
    counters.client = cloudwatch
    assert counters.flush() is True
    assert counters.flush() is True  # nothing pending: no call, no double count
    assert metric_sums(cloudwatch, NAMESPACE, {"Stream": "s1"}, ["Polls", "Gaps"]) == {"Polls": 5.0, "Gaps": 1.0}


def test_reporter_sends_the_growth_of_the_stats(cloudwatch, moto_url) -> None:
    stats = {"polls": 4, "gaps": 1}
    reporter = StatsReporter(CloudWatchCounters(CloudWatchConfig(NAMESPACE, {"Stream": "s2"}, endpoint_url=moto_url)),
                             lambda: dict(stats), {"polls": "Polls", "gaps": "Gaps"})
    reporter.report()
    stats["polls"] = 7
    reporter.report()
    assert metric_sums(cloudwatch, NAMESPACE, {"Stream": "s2"}, ["Polls", "Gaps"]) == {"Polls": 7.0, "Gaps": 1.0}


def test_poller_service_reports_polls_gaps_and_records_put(cloudwatch, moto_url, tmp_path) -> None:
    kinesis = boto3.client("kinesis", region_name="us-east-1", endpoint_url=moto_url)
    kinesis.create_stream(StreamName="metrics-test", ShardCount=1)
    # Two overlapping polls, then one sharing nothing with the previous (a gap), then overlap again.
    api = FakeApi([page("a", "b"), page("b", "c"), page("x", "y"), page("y", "z")])
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1", "CHAINFEAT_STREAM": "metrics-test",
           "CHAINFEAT_API_URL": api.url, "CHAINFEAT_KINESIS_ENDPOINT": moto_url,
           "CHAINFEAT_CLOUDWATCH_ENDPOINT": moto_url, "CHAINFEAT_METRICS_NAMESPACE": "chainfeat/Poller",
           "CHAINFEAT_METRICS_INTERVAL_S": "1", "CHAINFEAT_POLL_INTERVAL_S": "0.5",
           "CHAINFEAT_MIN_POLL_INTERVAL_S": "0.25", "CHAINFEAT_ALIVE_FILE": str(tmp_path / "alive")}
    service = subprocess.Popen([sys.executable, "-m", "connectors.kinesis.poller_service"], cwd=REPO_ROOT, env=env,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while api.requests < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
        service.send_signal(signal.SIGTERM)
        _, stderr = service.communicate(timeout=60)
    finally:
        service.kill()
        api.close()
    assert service.returncode == 0, stderr
    # Every poll the API served, including one in flight when the signal came, is counted.
    polls = api.requests
    sums = metric_sums(cloudwatch, "chainfeat/Poller", {"Stream": "metrics-test"},
                       ["Polls", "Transactions", "Gaps", "PollErrors", "RecordsPut", "RecordsResent"])
    assert polls >= 6
    # Each poll is one Kinesis record (its two transactions and a heartbeat: connectors/kinesis/producer.py).
    assert sums == {"Polls": polls, "Transactions": 2 * polls, "Gaps": 1, "PollErrors": 0,
                    "RecordsPut": polls, "RecordsResent": 0}
    assert stream_records(kinesis, "metrics-test") == polls
