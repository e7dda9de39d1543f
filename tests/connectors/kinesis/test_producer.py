"""The poller's Kinesis writer against moto's Kinesis server with several shards (behind a proxy that throttles
some puts): every poll one record on one shard, in poll order, none lost; and the job, reading exactly what
is on the stream shard after shard, writes the reference's features."""

from __future__ import annotations

import json
import subprocess

import boto3
import pytest
import urllib3

from connectors.blockchain.source import Poll, RecordingWriter
from connectors.kinesis.producer import (
    MAX_BYTES_PER_RECORD,
    ORDERING_KEY,
    KinesisConfig,
    KinesisWriteError,
    KinesisWriter,
    poll_records,
)
from connectors.retry import RetryPolicy
from tests.conftest import CHAINFEAT
from tests.support.http import LocalHttpServer, QuietHandler

T0 = 1714521600
STREAM = "chainfeat-test"
SHARDS = 4


class ThrottlingProxy(LocalHttpServer):
    """Forwards to moto; the next N PutRecord calls are answered as a throttled shard answers them
    (HTTP 400 ProvisionedThroughputExceededException), without reaching moto."""

    def __init__(self, upstream: str) -> None:
        self.failing_calls = 0
        self.injected_failures = 0
        http = urllib3.PoolManager()
        proxy = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("X-Amz-Target", "").endswith(".PutRecord") and proxy.failing_calls > 0:
                    proxy.failing_calls -= 1
                    proxy.injected_failures += 1
                    error = {"__type": "ProvisionedThroughputExceededException", "message": "Rate exceeded for shard"}
                    self.reply(400, json.dumps(error).encode(), "application/x-amz-json-1.1")
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                response = http.request("POST", upstream + self.path, body=body, headers=headers)
                self.reply(response.status, response.data, response.headers.get("Content-Type", "application/x-amz-json-1.1"))

        super().__init__(Handler)
        self.url = self.base_url


@pytest.fixture
def stream(moto_url, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("kinesis", region_name="us-east-1", endpoint_url=moto_url)
    client.create_stream(StreamName=STREAM, ShardCount=SHARDS)
    yield client
    client.delete_stream(StreamName=STREAM)


def records_by_shard(client) -> dict[str, list[dict]]:
    """Every record of every shard, each shard in its own (sequence-number) order."""
    shards = {}
    for shard in client.describe_stream(StreamName=STREAM)["StreamDescription"]["Shards"]:
        iterator = client.get_shard_iterator(StreamName=STREAM, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = []
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=10000)
            records += page["Records"]
            iterator = page.get("NextShardIterator") if page["Records"] else None
        shards[shard["ShardId"]] = records
    return shards


def read_shard_after_shard(client) -> list[dict]:
    """The stream read one shard to its end before the next: the order a source with one shard far ahead
    of the others (after a restore, a backlog) sees."""
    return [record for records in records_by_shard(client).values() for record in records]


def lines_of(records: list[dict]) -> list[bytes]:
    """The stream lines the records carry, as the job's json format reads them (an array: a row per element)."""
    return [json.dumps(element, separators=(",", ":")).encode() for record in records
            for element in json.loads(record["Data"])]


def polls(count: int, per_poll: int) -> list[Poll]:
    return [
        Poll(polled_at=T0 + 15 * n, txs=[{"hash": f"{n:04d}{i:060d}", "time": T0 + 15 * n - i % 10, "fee": i}
                                          for i in range(per_poll)])
        for n in range(count)
    ]


def expected_lines(written: list[Poll]) -> list[bytes]:
    return [json.dumps(json.loads(line), separators=(",", ":")).encode() for poll in written for line in poll.lines.lines]


@pytest.fixture
def proxy(moto_url):
    throttling = ThrottlingProxy(moto_url)
    yield throttling
    throttling.close()


def writer_through(url: str, attempts: int = 10) -> KinesisWriter:
    retry = RetryPolicy(max_attempts=attempts, base_delay_s=0.01, max_delay_s=0.05)
    return KinesisWriter(KinesisConfig(STREAM, endpoint_url=url, retry=retry))


def test_every_poll_is_one_record_on_one_shard_in_poll_order(stream, moto_url) -> None:
    written = polls(6, 100)
    writer = writer_through(moto_url)
    assert [writer.write(poll) for poll in written] == [1] * 6
    shards = records_by_shard(stream)
    used = {shard: records for shard, records in shards.items() if records}
    assert len(shards) == SHARDS and len(used) == 1  # one partition key: one shard, whatever the stream has
    (records,) = used.values()
    assert {record["PartitionKey"] for record in records} == {ORDERING_KEY}
    assert [int(record["SequenceNumber"]) for record in records] == sorted(int(r["SequenceNumber"]) for r in records)
    # Each record a whole poll, its heartbeat last; read in any shard order, the lines of the spool, in order.
    assert [json.loads(record["Data"])[-1] for record in records] == [
        {"heartbeat": True, "time": int(poll.polled_at), "polled_at": poll.polled_at} for poll in written]
    assert lines_of(read_shard_after_shard(stream)) == expected_lines(written)
    assert writer.records_sent == 6 and writer.records_resent == 0


def test_throttled_puts_are_retried_in_order_and_none_is_lost_or_doubled(stream, proxy) -> None:
    proxy.failing_calls = 4
    written = polls(5, 50)
    writer = writer_through(proxy.url)
    for poll in written:
        writer.write(poll)
    assert proxy.injected_failures == 4 and writer.records_resent == 4 and writer.records_sent == 5
    assert lines_of(read_shard_after_shard(stream)) == expected_lines(written)


def test_gives_up_with_a_clear_error_when_puts_keep_failing(stream, proxy) -> None:
    proxy.failing_calls = 1000
    with pytest.raises(KinesisWriteError, match=r"PutRecord to chainfeat-test failed after 3 attempts.*not written"):
        writer_through(proxy.url, attempts=3).write(polls(1, 10)[0])


def test_a_poll_over_one_mebibyte_becomes_several_records_in_order() -> None:
    lines = [json.dumps({"hash": f"{i:064d}", "relayed_by": "x" * 3000}).encode() for i in range(800)]
    records = poll_records(lines)
    assert len(records) == 3
    assert all(len(data) + len(ORDERING_KEY) <= MAX_BYTES_PER_RECORD and data.endswith(b"]\n") for data in records)
    assert [element for data in records for element in json.loads(data)] == [json.loads(line) for line in lines]


def test_of_inputs_and_outputs_only_address_and_value_are_sent() -> None:
    tx = {"hash": "h" * 64, "time": T0, "fee": 5, "out": [],
          "inputs": [{"script": "ab" * 600_000, "prev_out": {"addr": "bc1qa", "value": 7, "script": "cd" * 600_000}}]}
    (data,) = poll_records(Poll(T0 + 1, [tx]).lines.lines)
    assert json.loads(data) == [{"hash": "h" * 64, "time": T0, "fee": 5, "input_count": 1, "output_count": 0,
                                 "inputs": [{"address": "bc1qa", "value": 7}], "outputs": [], "polled_at": T0 + 1},
                                {"heartbeat": True, "time": T0 + 1, "polled_at": T0 + 1}]


def test_a_line_over_one_mebibyte_is_sent_as_rejected() -> None:
    poll = Poll(T0, [{"hash": "h" * 64, "time": T0, "fee": 5, "relayed_by": "x" * 2_000_000}])
    (data,) = poll_records(poll.lines.lines)
    rejected, heartbeat = json.loads(data)
    assert len(data) < MAX_BYTES_PER_RECORD and rejected["rejection"].startswith("transaction line over 1 MiB")
    assert heartbeat["heartbeat"] is True


def test_poll_command_replays_onto_kinesis(stream, moto_url, tmp_path, cli_env) -> None:
    recording = tmp_path / "rec.jsonl"
    writer = RecordingWriter(recording)
    for poll in polls(2, 5):
        writer.write(poll)
    env = {**cli_env, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    result = subprocess.run(
        [*CHAINFEAT, "poll", "--source", "replay", "--recording", str(recording), "--speed", "0",
         "--sink", "kinesis", "--stream", STREAM, "--kinesis-endpoint-url", moto_url],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "2 polls, 10 transactions" in result.stderr
    records = read_shard_after_shard(stream)
    assert [len(json.loads(record["Data"])) for record in records] == [6, 6]  # 5 transactions + a heartbeat each


@pytest.mark.slow
def test_the_job_reading_the_stream_shard_after_shard_writes_the_reference_features(stream, moto_url, server,
                                                                                    data_dir) -> None:
    """What the poller put on a stream of several shards, read one shard to its end before the next (the
    worst read order a per-subtask watermark can meet), through the job's own json format and SQL: the
    features, dead letters and late output are the reference's. (The Kinesis connector itself cannot run
    here; the records' bytes are what it would hand the format.)"""
    from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig
    from job.flow.config import JobConfig, load_property_groups
    from job.flow.pipeline import build_pipeline
    from tests.reference import expected_results
    from tests.support import GROUP, online_rows, reference_input, scenario, sink_rows

    written = scenario()
    writer = writer_through(moto_url)
    for poll in written:
        writer.write(poll)
    feed = data_dir / "feed"
    feed.mkdir(parents=True)
    (feed / "stream.jsonl").write_bytes(b"".join(record["Data"] for record in read_shard_after_shard(stream)))
    config = JobConfig.from_properties(load_property_groups(), data_dir, featurestore_endpoint_url=server.url,
                                       monitor_interval_s=None)
    pipeline = build_pipeline(config)
    for definition in pipeline.feature_groups:
        FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url)).ensure_feature_group(definition)
    pipeline.execute_async("kinesis-records").get_job_execution_result().result()
    expected = expected_results(reference_input(written))
    assert online_rows(server.url, GROUP) == expected.features
    assert len(sink_rows(data_dir / "dead_letter")) == len(expected.dead_letter)
    assert sorted(row["hash"] for row in sink_rows(data_dir / "late")) == sorted(expected.late)
