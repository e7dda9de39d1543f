"""The poller's Kinesis writer against moto's Kinesis server, behind a proxy that fails some records."""

from __future__ import annotations

import json
from collections import Counter

import boto3
import pytest
import urllib3

from connectors.blockchain.source import Poll
from connectors.kinesis.producer import (
    MAX_BYTES_PER_CALL,
    KinesisConfig,
    KinesisWriteError,
    KinesisWriter,
    batches,
    record_for,
)
from connectors.retry import RetryPolicy
from tests.support.http import LocalHttpServer, QuietHandler

T0 = 1714521600
STREAM = "chainfeat-test"


class FailingProxy(LocalHttpServer):
    """Forwards to moto; for the next N PutRecords calls it withholds every other record and reports it
    failed (ProvisionedThroughputExceededException), as a throttled shard does."""

    def __init__(self, upstream: str) -> None:
        self.failing_calls = 0
        self.injected_failures = 0
        http = urllib3.PoolManager()
        proxy = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                withheld: list[int] = []
                if self.headers.get("X-Amz-Target", "").endswith("PutRecords") and proxy.failing_calls > 0:
                    proxy.failing_calls -= 1
                    request = json.loads(body)
                    withheld = list(range(1, len(request["Records"]), 2))
                    request["Records"] = [r for i, r in enumerate(request["Records"]) if i not in withheld]
                    body = json.dumps(request).encode()
                response = http.request("POST", upstream + self.path, body=body, headers=headers)
                data = response.data
                if withheld and response.status == 200:
                    result = json.loads(data)
                    written = iter(result["Records"])
                    total = len(result["Records"]) + len(withheld)
                    result["Records"] = [
                        {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"}
                        if i in withheld else next(written)
                        for i in range(total)
                    ]
                    result["FailedRecordCount"] = result.get("FailedRecordCount", 0) + len(withheld)
                    proxy.injected_failures += len(withheld)
                    data = json.dumps(result).encode()
                self.reply(response.status, data, response.headers.get("Content-Type", "application/x-amz-json-1.1"))

        super().__init__(Handler)
        self.url = self.base_url


@pytest.fixture
def stream(moto_url, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("kinesis", region_name="us-east-1", endpoint_url=moto_url)
    client.create_stream(StreamName=STREAM, ShardCount=2)
    yield client
    client.delete_stream(StreamName=STREAM)


def stream_records(client) -> list[tuple[str, bytes]]:
    records = []
    for shard in client.describe_stream(StreamName=STREAM)["StreamDescription"]["Shards"]:
        iterator = client.get_shard_iterator(StreamName=STREAM, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=10000)
            records += [(r["PartitionKey"], r["Data"]) for r in page["Records"]]
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return records


def polls(count: int, per_poll: int) -> list[Poll]:
    return [
        Poll(polled_at=T0 + 15 * n, txs=[{"hash": f"{n:04d}{i:060d}", "time": T0 + 15 * n - i % 10, "fee": i}
                                          for i in range(per_poll)])
        for n in range(count)
    ]


@pytest.fixture
def proxy(moto_url):
    failing = FailingProxy(moto_url)
    yield failing
    failing.close()


def writer_through(proxy: FailingProxy, attempts: int) -> KinesisWriter:
    retry = RetryPolicy(max_attempts=attempts, base_delay_s=0.01, max_delay_s=0.05)
    return KinesisWriter(KinesisConfig(STREAM, endpoint_url=proxy.url, retry=retry))


def test_failed_records_are_resent_until_none_is_lost(stream, proxy) -> None:
    proxy.failing_calls = 3
    writer = writer_through(proxy, attempts=10)
    sent = [writer.write(poll) for poll in polls(3, 400)]
    assert proxy.injected_failures > 0 and writer.records_resent == proxy.injected_failures
    expected = [(record_for(line, key)["PartitionKey"], line)
                for poll in polls(3, 400) for line, key in zip(poll.lines.lines, poll.lines.keys)]
    assert sum(sent) == len(expected) == 1203
    assert Counter(stream_records(stream)) == Counter(expected)  # each exactly once
    assert {key for key, _ in expected} >= {"heartbeat", "0000" + "0" * 60}


def test_gives_up_with_a_clear_error_when_records_keep_failing(stream, proxy) -> None:
    proxy.failing_calls = 1000
    with pytest.raises(KinesisWriteError, match=r"PutRecords to chainfeat-test failed after 3 attempts.*not written"):
        writer_through(proxy, attempts=3).write(polls(1, 10)[0])


def test_batches_respect_kinesis_limits() -> None:
    small = [{"Data": b"x" * 100, "PartitionKey": f"k{i}"} for i in range(1201)]
    assert [len(batch) for batch in batches(small)] == [500, 500, 201]
    large = [{"Data": b"y" * 900_000, "PartitionKey": f"k{i}"} for i in range(12)]
    sizes = [sum(len(r["Data"]) + len(r["PartitionKey"]) for r in batch) for batch in batches(large)]
    assert all(size <= MAX_BYTES_PER_CALL for size in sizes) and sum(len(b) for b in batches(large)) == 12


def test_inputs_and_outputs_are_counted_not_sent() -> None:
    tx = {"hash": "h" * 64, "time": T0, "fee": 5, "inputs": [{"script": "ab" * 600_000}], "out": []}
    (line, heartbeat) = Poll(T0 + 1, [tx]).lines.lines
    record = record_for(line, "h" * 64)
    assert json.loads(record["Data"]) == {"hash": "h" * 64, "time": T0, "fee": 5, "input_count": 1,
                                          "output_count": 0, "polled_at": T0 + 1}
    assert record["PartitionKey"] == "h" * 64 and record_for(heartbeat)["PartitionKey"] == "heartbeat"


def test_a_line_over_one_mebibyte_is_sent_as_rejected() -> None:
    (line, _heartbeat) = Poll(T0, [{"hash": "h" * 64, "time": T0, "fee": 5, "relayed_by": "x" * 2_000_000}]).lines.lines
    record = record_for(line, "h" * 64)
    rejected = json.loads(record["Data"])
    assert len(record["Data"]) < 1024 * 1024 and rejected["rejection"].startswith("transaction line over 1 MiB")


def test_poll_command_replays_onto_kinesis(stream, moto_url, tmp_path, cli_env) -> None:
    import subprocess

    from connectors.blockchain.source import RecordingWriter
    from tests.conftest import CHAINFEAT

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
    assert len(stream_records(stream)) == 12  # 10 transactions + 2 heartbeats
