"""The spool (atomic poll files) and the feed publisher (ordered, one unread file at most, crash-safe)."""

from __future__ import annotations

import json
import random

from connectors.blockchain.source import Poll
from connectors.spool import FeedPublisher, ProgressLog, SpoolWriter, has_spool_files, last_poll_time, spool_files

T0 = 1714521600.0


def poll(number: int) -> Poll:
    return Poll(polled_at=T0 + 15 * number + 0.25, txs=[{"hash": f"h{number}", "time": int(T0) + 15 * number, "fee": 1}])


def feed_lines(feed_dir) -> list[dict]:
    return [json.loads(line) for path in sorted(feed_dir.glob("feed-*.jsonl")) for line in path.read_text().splitlines()]


def test_spool_files_are_partitioned_complete_and_sort_by_poll_time(tmp_path) -> None:
    writer = SpoolWriter(tmp_path / "spool")
    numbers = list(range(300))  # 75 minutes: crosses an hour partition
    random.Random(1).shuffle(numbers)
    for number in numbers:
        writer.write(poll(number))
    names = spool_files(tmp_path / "spool")
    assert [last_poll_time(tmp_path / "spool" / name) for name in names] == [T0 + 15 * n + 0.25 for n in range(300)]
    assert names[0].startswith("date=2024-05-01/hour=00/") and names[-1].startswith("date=2024-05-01/hour=01/")
    assert not [p for p in (tmp_path / "spool").rglob(".*")]  # no temp file left behind
    assert spool_files(tmp_path / "spool", after=names[200]) == names[201:]
    lines = [json.loads(line) for line in (tmp_path / "spool" / names[0]).read_text().splitlines()]
    assert lines == [{"hash": "h0", "time": int(T0), "fee": 1, "polled_at": T0 + 0.25},
                     {"heartbeat": True, "time": int(T0), "polled_at": T0 + 0.25}]


def test_spool_files_after_a_name_span_later_days_and_hours_only(tmp_path) -> None:
    writer = SpoolWriter(tmp_path / "spool", durable=False)
    hours = [0, 1, 23, 24, 25, 47, 48, 71]  # polls in four days, several hours each
    for hour in hours:
        writer.write(poll(hour * 240))  # 240 polls of 15 s = 1 h
    names = spool_files(tmp_path / "spool")
    assert [name.split("/poll-")[0] for name in names] == [
        "date=2024-05-01/hour=00", "date=2024-05-01/hour=01", "date=2024-05-01/hour=23", "date=2024-05-02/hour=00",
        "date=2024-05-02/hour=01", "date=2024-05-02/hour=23", "date=2024-05-03/hour=00", "date=2024-05-03/hour=23"]
    for index, name in enumerate(names):
        assert spool_files(tmp_path / "spool", after=name) == names[index + 1:]
        assert has_spool_files(tmp_path / "spool", after=name) == (index < len(names) - 1)
    assert spool_files(tmp_path / "spool", after="date=2024-05-02/hour=00/poll-0") == names[3:]  # before the hour's first
    assert has_spool_files(tmp_path / "spool") and not has_spool_files(tmp_path / "elsewhere")


def test_a_replayed_poll_written_again_rewrites_its_own_file(tmp_path) -> None:
    writer = SpoolWriter(tmp_path / "spool", durable=False)
    for _attempt in range(2):  # a replay resumed from an older saved position writes polls 1 and 2 again
        for number in (1, 2):
            replayed = poll(number)
            replayed.key = f"r{number:09d}"
            writer.write(replayed)
    assert len(spool_files(tmp_path / "spool")) == 2


def test_publisher_publishes_in_poll_order_and_numbers_each_file(tmp_path) -> None:
    writer = SpoolWriter(tmp_path / "spool")
    publisher = FeedPublisher(tmp_path / "spool", tmp_path / "feed", committed=lambda: 99)
    for number in (5, 1, 3):
        writer.write(poll(number))
    first = publisher.publish()
    for number in (6, 7):
        writer.write(poll(number))
    second = publisher.publish()
    assert publisher.publish() is None  # nothing new
    assert [first.name, second.name] == ["feed-000000001.jsonl", "feed-000000002.jsonl"]
    lines = feed_lines(tmp_path / "feed")
    assert [line["hash"] for line in lines if "hash" in line] == ["h1", "h3", "h5", "h6", "h7"]
    markers = [line for line in lines if "publication" in line]
    assert markers == [{"heartbeat": True, "time": int(T0) + 75, "polled_at": T0 + 75.25, "publication": 1},
                       {"heartbeat": True, "time": int(T0) + 105, "polled_at": T0 + 105.25, "publication": 2}]
    assert [line.get("publication") for line in lines][-1] == 2  # a file ends with its marker


def test_the_next_file_waits_until_the_job_read_and_checkpointed_the_previous(tmp_path) -> None:
    writer = SpoolWriter(tmp_path / "spool")
    committed = [0]
    requests: list[int] = []
    publisher = FeedPublisher(tmp_path / "spool", tmp_path / "feed", committed=lambda: committed[0],
                              request_checkpoint=lambda: requests.append(1))
    writer.write(poll(1))
    assert publisher.publish() is not None  # the first file needs no permission
    writer.write(poll(2))
    writer.write(poll(3))
    assert publisher.publish() is None and not publisher.read_by_job()  # publication 1 not committed yet
    assert requests  # it asked for a checkpoint meanwhile
    committed[0] = 1
    published = publisher.publish()
    assert published is not None and [json.loads(line).get("hash") for line in published.read_text().splitlines()] == [
        "h2", None, "h3", None, None,
    ]
    assert not publisher.read_by_job()
    committed[0] = 2
    assert publisher.read_by_job()


def test_a_bounded_replay_s_last_publication_closes_its_windows(tmp_path) -> None:
    """Once the input has ended, the publication that holds its end finishes with a heartbeat closing_after_s past
    the last poll (event time moves past every window); before that, and without closing_after_s, at the poll."""
    writer = SpoolWriter(tmp_path / "spool")
    ended = [False]
    publisher = FeedPublisher(tmp_path / "spool", tmp_path / "feed", committed=lambda: 99,
                              input_ended=lambda: ended[0], closing_after_s=61)
    writer.write(poll(1))
    publisher.publish()
    assert not publisher.closed
    writer.write(poll(2))
    ended[0] = True
    publisher.publish()
    assert publisher.closed and publisher.publish() is None
    markers = [line for line in feed_lines(tmp_path / "feed") if "publication" in line]
    assert [marker["polled_at"] for marker in markers] == [T0 + 15.25, T0 + 30.25 + 61]
    assert publisher.last_poll_time() == T0 + 30.25  # the newest poll, not the closing heartbeat

    unbounded = FeedPublisher(tmp_path / "spool2", tmp_path / "feed2", committed=lambda: 99, input_ended=lambda: True)
    SpoolWriter(tmp_path / "spool2").write(poll(1))
    unbounded.publish()
    assert not unbounded.closed and feed_lines(tmp_path / "feed2")[-1]["polled_at"] == T0 + 15.25


def test_an_interrupted_closing_publication_is_redone_identically(tmp_path) -> None:
    writer = SpoolWriter(tmp_path / "spool")
    writer.write(poll(1))
    state = {"through": "", "next": 1,
             "pending": {"from": "", "through": spool_files(tmp_path / "spool")[0], "number": 1, "closing_after_s": 61}}
    (tmp_path / "feed").mkdir()
    (tmp_path / "feed" / "_publisher.json").write_text(json.dumps(state))
    publisher = FeedPublisher(tmp_path / "spool", tmp_path / "feed", committed=lambda: 99,
                              input_ended=lambda: False, closing_after_s=61)  # the input's end is not known yet
    publisher.publish()
    assert publisher.closed and feed_lines(tmp_path / "feed")[-1]["polled_at"] == T0 + 15.25 + 61


def test_an_interrupted_publication_is_redone_identically(tmp_path) -> None:
    writer = SpoolWriter(tmp_path / "spool")
    for number in range(3):
        writer.write(poll(number))
    publisher = FeedPublisher(tmp_path / "spool", tmp_path / "feed", committed=lambda: 99)
    # Simulate a crash after the intent was recorded but before the feed file was written.
    state = {"through": "", "next": 1, "pending": {"from": "", "through": spool_files(tmp_path / "spool")[1], "number": 1}}
    (tmp_path / "feed" / "_publisher.json").write_text(json.dumps(state))
    writer.write(poll(3))
    first = publisher.publish()
    second = publisher.publish()
    assert first.name == "feed-000000001.jsonl" and second.name == "feed-000000002.jsonl"
    hashes = [line["hash"] for line in feed_lines(tmp_path / "feed") if "hash" in line]
    assert hashes == ["h0", "h1", "h2", "h3"]


def test_progress_log_reads_committed_files_only_and_prunes_old_ones(tmp_path) -> None:
    progress = tmp_path / "progress"
    progress.mkdir()
    log = ProgressLog(progress, roll_s=0.1)
    assert log.highest() == 0
    (progress / ".part-in-progress").write_text(json.dumps({"publication": 9}) + "\n")  # not committed yet
    for number in range(1, 6):
        (progress / f"part-{number}").write_text(json.dumps({"publication": number, "polled_at": 1.0}) + "\n")
    assert log.highest() == 5
    assert len([p for p in progress.iterdir() if not p.name.startswith(".")]) == 3
    assert log.highest() == 5  # still known after pruning


def test_a_fast_replay_gathers_polls_into_files_and_says_what_is_on_disk(tmp_path) -> None:
    flushed: list[str] = []
    writer = SpoolWriter(tmp_path / "spool", durable=False, batch_bytes=300, on_flush=lambda last: flushed.append(last.key))
    for number in range(7):
        replayed = poll(number)
        replayed.key = f"r{number:09d}"
        writer.write(replayed)
    assert flushed == ["r000000002", "r000000005"]  # ~140 bytes a poll: a file every third poll
    writer.flush()  # what the poller does when it stops
    assert flushed[-1] == "r000000006"
    names = spool_files(tmp_path / "spool")
    assert [name.rsplit("-", 1)[1] for name in names] == ["r000000000.jsonl", "r000000003.jsonl", "r000000006.jsonl"]
    lines = [json.loads(line) for name in names for line in (tmp_path / "spool" / name).read_text().splitlines()]
    assert [line["hash"] for line in lines if "hash" in line] == [f"h{n}" for n in range(7)]
    assert writer.flush() is None  # nothing held
