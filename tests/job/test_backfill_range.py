"""Which archive partitions a backfill's --from/--to reads, and which local files a backfill refuses (pure functions:
the integration tests in test_backfill.py run them through Flink)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from job.flow.backfill import TimeRange, parse_moment
from job.local.backfill import outside_archive_layout

FUTURE_TOLERANCE_S, PAST_TOLERANCE_S = 600, 14 * 86400  # job/flow/application_properties.json's


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize(("start", "end", "hours"), [
    # a time may lie up to 10 min after its poll: 10:05 can have been polled at 09:55, in hour 09; and Firehose dates
    # an object by its oldest record, up to its 5-min buffer earlier: a poll at 10:00-10:05 can sit in hour 09
    ("2024-05-01 10:05:00", "2024-05-01 12:00:00", ("2024-05-01 09", "2024-05-15 12")),
    ("2024-05-01 10:14:59", "2024-05-01 12:00:00", ("2024-05-01 09", "2024-05-15 12")),
    ("2024-05-01 10:15:00", "2024-05-01 12:00:00", ("2024-05-01 10", "2024-05-15 12")),
    # ... and up to 14 days before it: polled up to 14 days after --to (the hour of --to + 14 d itself included)
    ("2024-05-31 23:59:59", "2024-06-01 00:00:01", ("2024-05-31 23", "2024-06-15 00")),
])
def test_a_range_reads_the_hours_its_transactions_can_have_been_polled_in(start, end, hours) -> None:
    assert TimeRange(at(start), at(end)).archive_hours(FUTURE_TOLERANCE_S, PAST_TOLERANCE_S) == hours


def test_open_ends_read_every_hour() -> None:
    assert TimeRange().archive_hours(FUTURE_TOLERANCE_S, PAST_TOLERANCE_S) == ("", "9999-12-31 23")
    assert TimeRange(start_s=300).archive_hours(FUTURE_TOLERANCE_S, PAST_TOLERANCE_S) == ("1970-01-01 00", "9999-12-31 23")
    assert TimeRange(end_s=parse_moment("9999-12-31T00:00:00Z")).archive_hours(
        FUTURE_TOLERANCE_S, PAST_TOLERANCE_S)[1] == "9999-12-31 23"


def test_files_outside_the_partitions_are_named(tmp_path: Path) -> None:
    for name in ("date=2024-05-01/hour=09/poll-1.jsonl", "date=2024-05-01/hour=09/.poll-2.jsonl.tmp", "_complete",
                 "date=2024-05-01/hour=10/raw-1.gz"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}\n")
    assert outside_archive_layout(tmp_path) == []
    for name in ("loose.jsonl", "date=2024-05-01/poll-3.jsonl", "date=2024-05-01/hour=9/poll-4.jsonl",
                 "2024/05/01/09/firehose-1.gz"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}\n")
    assert outside_archive_layout(tmp_path) == ["2024/05/01/09/firehose-1.gz", "date=2024-05-01/hour=9/poll-4.jsonl",
                                                "date=2024-05-01/poll-3.jsonl", "loose.jsonl"]


def test_the_backfill_group_states_a_backfill_and_reads_back_the_same(tmp_path: Path) -> None:
    """What `chainfeat backfill --flink-url` writes into the properties is what the zip's entry point reads."""
    from job.flow.backfill import BackfillSettings
    from job.flow.config import load_property_groups

    settings = BackfillSettings((tmp_path / "spool").as_uri(), (tmp_path / "report").as_uri(),
                                TimeRange(at("2024-05-01 10:05:00") + 0.25, at("2024-05-02 00:00:00")),
                                ("size_5min", "tx_minute_features"))
    groups = {**load_property_groups(), "Backfill": settings.properties()}
    assert BackfillSettings.from_properties(groups, tmp_path / "data") == settings
    relative = {**load_property_groups(), "Backfill": {"archive.uri": "/archive/raw", "from": "2024-05-01T10:00:00Z"}}
    read = BackfillSettings.from_properties(relative, tmp_path / "data")
    assert (read.archive_uri, read.report_uri, read.time_range, read.groups) == (
        "file:///archive/raw", (tmp_path / "data" / "backfill").as_uri(), TimeRange(at("2024-05-01 10:00:00")), ())
