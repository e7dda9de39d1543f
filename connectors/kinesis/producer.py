"""The poller's Kinesis output: each poll's stream lines (connectors/blockchain/transactions.py: one per
transaction, then a heartbeat) as Kinesis records.

PutRecords in batches within Kinesis limits (500 records, 5 MiB per call, 1 MiB per record including
its partition key); partition key = transaction hash. Records a response reports as failed
(FailedRecordCount > 0) are re-sent, alone, with backoff, until none is left: nothing is lost, and
nothing is sent twice except when Kinesis itself asks for a retry of a call it may have half-applied
(the job's dedup absorbs those).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import boto3
from botocore.config import Config

from connectors import DEFAULT_REGION
from connectors.blockchain.source import Poll
from connectors.blockchain.transactions import partition_key, rejected_line
from connectors.retry import RetriesExhausted, RetryPolicy, is_retryable_aws_error

log = logging.getLogger(__name__)

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024
HEARTBEAT_PARTITION_KEY = "heartbeat"


class KinesisWriteError(RuntimeError):
    pass


class _SomeRecordsFailed(Exception):
    """Raised inside a PutRecords attempt so the shared retry policy re-sends only the failed records."""


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


def record_for(line: bytes, key: str | None = None) -> dict[str, Any]:
    """A Kinesis record for a stream line (``key``: its transaction's hash). A line over 1 MiB — only a
    transaction with absurd field values can be — is sent as a rejected line, so the job dead-letters it."""
    partition = partition_key(key)
    if len(line) + len(partition.encode()) > MAX_BYTES_PER_RECORD:
        log.warning("a transaction line of %d bytes is over Kinesis's 1 MiB; sent as rejected", len(line))
        line = rejected_line(line, "transaction line over 1 MiB")
    return {"Data": line, "PartitionKey": partition}


def batches(records: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Groups of at most 500 records and 5 MiB (data + partition keys)."""
    batch: list[dict[str, Any]] = []
    size = 0
    for record in records:
        record_size = len(record["Data"]) + len(record["PartitionKey"].encode())
        if batch and (len(batch) == MAX_RECORDS_PER_CALL or size + record_size > MAX_BYTES_PER_CALL):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += record_size
    if batch:
        yield batch


class KinesisWriter:
    """A poll writer (see connectors/blockchain/poller.py) that puts polls on a Kinesis stream."""

    def __init__(self, config: KinesisConfig, client: Any = None, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.client = client or config.client()
        self._sleep = sleep
        self.records_sent = 0
        self.records_resent = 0

    def write(self, poll: Poll) -> int:
        lines = poll.lines
        return self.put([record_for(line, key) for line, key in zip(lines.lines, lines.keys)])

    def put(self, records: list[dict[str, Any]]) -> int:
        for batch in batches(records):
            self._put_batch(batch)
        return len(records)

    def _put_batch(self, batch: list[dict[str, Any]]) -> None:
        pending = batch

        def attempt() -> None:
            nonlocal pending
            response = self.client.put_records(StreamName=self.config.stream_name, Records=pending)
            if not response.get("FailedRecordCount"):
                self.records_sent += len(pending)
                return
            failed = [record for record, result in zip(pending, response["Records"]) if "ErrorCode" in result]
            self.records_sent += len(pending) - len(failed)
            self.records_resent += len(failed)
            codes = sorted({result["ErrorCode"] for result in response["Records"] if "ErrorCode" in result})
            pending = failed
            raise _SomeRecordsFailed(f"{len(failed)} of the records failed ({', '.join(codes)})")

        def retryable(error: BaseException) -> bool:
            return isinstance(error, _SomeRecordsFailed) or is_retryable_aws_error(error)

        try:
            self.config.retry.call(f"PutRecords to {self.config.stream_name}", attempt, retryable, sleep=self._sleep)
        except RetriesExhausted as error:
            raise KinesisWriteError(
                f"{error}; {len(pending)} records not written. Check the stream's capacity and the "
                "credentials' kinesis:PutRecords permission, then poll again."
            ) from None
