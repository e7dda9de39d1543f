"""The poller's Kinesis output: each poll as one Kinesis record, all on one shard, in poll order.

Why this shape: the job must read the stream in the order the local feed hands it the spool (README "Why a
feed next to the spool"), poll after poll, each poll's heartbeat after its transactions. The `kinesis` SQL
source of flink-connector-aws 6.0 applies the DDL watermark per source subtask, not per shard, so lines
spread over shards (partition key = hash) would come out in whatever order the shards are read: after a
restore or any backlog one shard read ahead of another puts the other's transactions behind the watermark.
So:

- every record has the same partition key (ORDERING_KEY): one shard, however many the stream has;
- a record is a whole poll, the JSON array of its stream lines (connectors/blockchain/transactions.py:
  transactions, rejected lines, the heartbeat last). Flink's json format reads an array as one row per
  element, so the job's SQL and columns are the local ones; a poll is never split by a restore;
- records are put one at a time, each only once the previous one is accepted, with
  SequenceNumberForOrdering (strictly increasing sequence numbers; PutRecords does not guarantee order).

Limits: a record is at most 1 MiB (a poll of ~100 lines is ~60 KB; a bigger poll becomes several records, in
order; a single line over 1 MiB, which only absurd field values make, is sent as a rejected line so the job
dead-letters it: a standard transaction, at most 100 kvB, has at most a few thousand outputs, ~300 KB of line).
A shard takes 1 MiB/s and 1000 records/s: the reference load, ~60 KB every 15 s, is 0.4 % of it; the monitoring
stack alarms at half of it (infra/stacks/monitoring.py). A put Kinesis rejects (throttled, 5xx) is retried with
backoff until accepted; a put that timed out after Kinesis applied it is put again, so a poll can be read twice in
a row, which the job's dedup absorbs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from connectors import DEFAULT_REGION
from connectors.blockchain.source import Poll
from connectors.blockchain.transactions import rejected_line
from connectors.retry import RetriesExhausted, RetryPolicy, is_retryable_aws_error

log = logging.getLogger(__name__)

MAX_BYTES_PER_RECORD = 1024 * 1024  # data + partition key
SHARD_BYTES_PER_S = 1024 * 1024  # what one shard takes in
SHARD_RECORDS_PER_S = 1000
ORDERING_KEY = "chainfeat-polls"  # the one partition key: one shard, read in the order it was written
_ARRAY_OVERHEAD = len(b"[]\n")


class KinesisWriteError(RuntimeError):
    pass


@dataclass(frozen=True)
class KinesisConfig:
    stream_name: str
    region: str = DEFAULT_REGION
    endpoint_url: str | None = None
    retry: RetryPolicy = RetryPolicy(max_attempts=12, base_delay_s=0.1, max_delay_s=5.0, total_timeout_s=300.0)

    def client(self) -> Any:
        kwargs: dict[str, Any] = {
            "region_name": self.region,
            "config": Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        }
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        return boto3.client("kinesis", **kwargs)


def poll_records(lines: Sequence[bytes]) -> list[bytes]:
    """A poll's stream lines as Kinesis record data: JSON arrays of lines (a newline after each, so the raw
    archive Firehose writes has one poll per line), each within 1 MiB, in order."""
    limit = MAX_BYTES_PER_RECORD - len(ORDERING_KEY) - _ARRAY_OVERHEAD
    records: list[list[bytes]] = [[]]
    size = 0
    for line in lines:
        if len(line) > limit:
            log.warning("a transaction line of %d bytes is over Kinesis's 1 MiB; sent as rejected", len(line))
            line = rejected_line(line, "transaction line over 1 MiB")
        if records[-1] and size + 1 + len(line) > limit:
            records.append([])
            size = 0
        size += len(line) + (1 if records[-1] else 0)
        records[-1].append(line)
    return [b"[" + b",".join(record) + b"]\n" for record in records if record]


class KinesisWriter:
    """A poll writer (see connectors/blockchain/poller.py) that puts polls on a Kinesis stream, in order."""

    def __init__(self, config: KinesisConfig, client: Any = None, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.client = client or config.client()
        self._sleep = sleep
        self._last_sequence_number: str | None = None
        self.records_sent = 0
        self.records_resent = 0

    def write(self, poll: Poll) -> int:
        """Put the poll; returns the number of Kinesis records it took (one, unless over 1 MiB)."""
        records = poll_records(poll.lines.lines)
        for data in records:
            self._put(data)
        return len(records)

    def _put(self, data: bytes) -> None:
        request: dict[str, Any] = {"StreamName": self.config.stream_name, "Data": data, "PartitionKey": ORDERING_KEY}
        if self._last_sequence_number:
            request["SequenceNumberForOrdering"] = self._last_sequence_number

        def resent() -> None:
            self.records_resent += 1

        try:
            response = self.config.retry.call(f"PutRecord to {self.config.stream_name}",
                                              lambda: self.client.put_record(**request), is_retryable_aws_error,
                                              sleep=self._sleep, on_retry=resent)
        except RetriesExhausted as error:
            raise KinesisWriteError(
                f"{error}; the poll was not written. Check the stream's capacity and the credentials' "
                "kinesis:PutRecord permission, then poll again."
            ) from None
        self._last_sequence_number = response["SequenceNumber"]
        self.records_sent += 1
