"""The raw archive as the CDK app's Firehose delivers it to S3 (infra/stacks/ingestion.py), built here the way Firehose
builds it: the poller's Kinesis records (a poll's lines as JSON arrays, connectors/kinesis/producer.py) gathered per
buffering interval by arrival, each object gzip, named ``<evaluated prefix><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-
<uuid>.gz`` with the prefix's ``!{timestamp:...}`` evaluated at the arrival of the object's oldest record (UTC), as
Firehose's documentation states. The prefix and interval are given: the stack's, as its template states them."""

from __future__ import annotations

import gzip
import re
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone

from connectors.blockchain.source import Poll
from connectors.kinesis.producer import poll_records

STREAM_NAME = "chainfeat-ingestion-RawArchiveDelivery"  # CDK names the delivery stream: any name will do
# Java DateTimeFormatter letters the stack's prefix uses, as strftime directives.
_JAVA_PATTERN = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}


def evaluate_prefix(template: str, arrival: float) -> str:
    """A Firehose prefix with its ``!{timestamp:PATTERN}`` expressions evaluated at ``arrival`` (UTC)."""
    moment = datetime.fromtimestamp(arrival, tz=timezone.utc)

    def timestamp(match: re.Match) -> str:
        pattern = re.sub("|".join(_JAVA_PATTERN), lambda letters: _JAVA_PATTERN[letters[0]], match[1])
        return moment.strftime(pattern)

    evaluated = re.sub(r"!\{timestamp:([^}]*)\}", timestamp, template)
    assert "!{" not in evaluated, f"an expression this helper does not evaluate: {template}"
    return evaluated


def firehose_objects(polls: Iterable[Poll], prefix_template: str, buffering_interval_s: int) -> dict[str, bytes]:
    """Object key -> body of the archive Firehose writes for ``polls`` (each arriving at its poll time)."""
    objects: dict[str, bytes] = {}
    records: list[bytes] = []
    oldest: float | None = None

    def deliver() -> None:
        moment = datetime.fromtimestamp(oldest, tz=timezone.utc)
        name = f"{STREAM_NAME}-1-{moment:%Y-%m-%d-%H-%M-%S}-{uuid.UUID(int=len(objects) + 1)}.gz"
        objects[evaluate_prefix(prefix_template, oldest) + name] = gzip.compress(b"".join(records))

    for poll in polls:
        if oldest is not None and poll.polled_at - oldest >= buffering_interval_s:
            deliver()
            records, oldest = [], None
        oldest = poll.polled_at if oldest is None else oldest
        records += poll_records(poll.lines.text.splitlines())
    if records:
        deliver()
    return objects
