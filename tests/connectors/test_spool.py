"""The spool (atomic poll files) and the feed publisher (ordered, flow-controlled, crash-safe)."""

from __future__ import annotations

import json
import random

from connectors.blockchain.source import Poll
from connectors.spool import FeedPublisher, SpoolWriter, poll_lines, poll_time_of, spool_files

T0 = 1714521600.0


def poll(number: int) -> Poll:
    return Poll(polled_at=T0 + 15 * number + 0.25, txs=[{"hash": f"h{number}", "time": int(T0) + 15 * number, "fee": 1}])


def feed_lines(feed_dir) -> list[dict]:
    return [json.loads(line) for path in sorted(feed_dir.glob("feed-*.jsonl")) for line in path.read_text().splitlines()]


def test_poll_lines_carry_polled_at_and_end_with_a_heartbeat() -> None:
    lines = [json.loads(line) for line in poll_lines(poll(1))]
    assert lines[0] == {"hash": "h1", "time": int(T0) + 15, "fee": 1, "polled_at": T0 + 15.25}
    assert lines[-1] == {"heartbeat": True, "time": int(T0) + 15, "polled_at": T0 + 15.25}


def test_spool_files_are_partitioned_complete_and_sort_by_poll_time(tmp_path) -> None:
    writer = SpoolWriter(tmp_path / "spool")
    numbers = list(range(300))  # 75 minutes: crosses an hour partition
    random.Random(1).shuffle(numbers)
    for number in numbers:
        writer.write(poll(number))
    names = spool_files(tmp_path / "spool")
    assert [poll_time_of(name) for name in names] == [int(T0) + 15 * n for n in range(300)]
    assert names[0].startswith("date=2024-05-01/hour=00/") and names[-1].startswith("date=2024-05-01/hour=01/")
    assert not [p for p in (tmp_path / "spool").rglob(".*")]  # no temp file left behind


def test_publisher_publishes_in_poll_order_whatever_the_write_order(tmp_path) -> None:
    writer = SpoolWriter(tmp_path / "spool")
    publisher = FeedPublisher(tmp_path / "spool", tmp_path / "feed")
    for number in (5, 1, 3):
        writer.write(poll(number))
    publisher.publish()
    for number in (4, 2, 6):  # written late, but 2 and 4 were polled before 5: they follow, in order
        writer.write(poll(number))
    publisher.publish()
    assert publisher.publish() is None  # nothing new
    hashes = [line["hash"] for line in feed_lines(tmp_path / "feed") if "hash" in line]
    assert hashes == ["h1", "h3", "h5", "h6"]  # 2 and 4 arrived after 5 was published: never re-ordered


def test_flow_control_waits_until_the_job_read_the_previous_file(tmp_path) -> None:
    writer = SpoolWriter(tmp_path / "spool")
    read_up_to: list[int] = [0]
    publisher = FeedPublisher(tmp_path / "spool", tmp_path / "feed", ready=lambda heartbeat: read_up_to[0] >= heartbeat)
    writer.write(poll(1))
    assert publisher.publish() is not None  # the first file needs no permission
    writer.write(poll(2))
    writer.write(poll(3))
    assert publisher.publish() is None  # the job has not read poll 1 yet
    read_up_to[0] = poll_time_of(spool_files(tmp_path / "spool")[0])
    published = publisher.publish()
    assert published is not None and [json.loads(line).get("hash") for line in published.read_text().splitlines()] == [
        "h2", None, "h3", None,
    ]


def test_an_interrupted_publication_is_redone_identically(tmp_path) -> None:
    writer = SpoolWriter(tmp_path / "spool")
    for number in range(3):
        writer.write(poll(number))
    publisher = FeedPublisher(tmp_path / "spool", tmp_path / "feed")
    # Simulate a crash after the intent was recorded but before the feed file was written.
    state = {"through": "", "next": 1, "pending": {"from": "", "through": spool_files(tmp_path / "spool")[1], "number": 1}}
    (tmp_path / "feed" / "_publisher.json").write_text(json.dumps(state))
    writer.write(poll(3))
    first = publisher.publish()
    second = publisher.publish()
    assert first.name == "feed-000000001.jsonl" and second.name == "feed-000000002.jsonl"
    hashes = [line["hash"] for line in feed_lines(tmp_path / "feed") if "hash" in line]
    assert hashes == ["h0", "h1", "h2", "h3"]


def test_consolidate_merges_recent_feed_files_in_order(tmp_path) -> None:
    writer = SpoolWriter(tmp_path / "spool")
    publisher = FeedPublisher(tmp_path / "spool", tmp_path / "feed")
    for number in range(4):
        writer.write(poll(number))
        publisher.publish()
    assert len(list((tmp_path / "feed").glob("feed-*.jsonl"))) == 4
    merged = publisher.consolidate(published_after=0)
    assert [p.name for p in (tmp_path / "feed").glob("feed-*.jsonl")] == [merged.name]
    assert [line["hash"] for line in feed_lines(tmp_path / "feed") if "hash" in line] == ["h0", "h1", "h2", "h3"]
    writer.write(poll(4))
    assert publisher.publish().name == "feed-000000006.jsonl"  # numbering goes on after the merge
