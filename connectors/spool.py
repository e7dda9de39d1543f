"""The local stream: the spool (what the poller wrote) and the feed (what the Flink job reads).

spool/date=YYYY-MM-DD/hour=HH/poll-<ms>-<id>.jsonl — one file per poll (a replay as fast as possible gathers
consecutive polls into larger files), written atomically (a hidden temp name, then a rename): the polls'
stream lines (connectors/blockchain/transactions.py): one line per transaction, then a heartbeat. A file is
named after its first poll; a replayed poll's name derives from its place in the recording, so replaying it
again after a crash rewrites the same file instead of adding a second one.

feed/feed-<n>.jsonl — the spool published in poll order, one file per publication, each ending with a
heartbeat that carries its publication number n. Flink's file source reads the files it discovers in one
scan in no particular order, and a file read out of order would put its transactions behind the
watermark. So the feed never holds more than one file the job has not read *and checkpointed*: file n+1 is
published only once the job's committed progress (progress/, a file sink the job commits on each
checkpoint) shows publication n. Whatever restores the job — Flink restarting it from its last
checkpoint, or `chainfeat run` after a kill — finds at most that one file to read again: results do not
depend on discovery order, replay speed or who restarted the job. A publication's range is recorded before
its file is written and the file's name derives from it, so a crash at any point is redone identically.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from connectors.atomic_files import atomic_write
from connectors.blockchain.source import Poll
from connectors.blockchain.transactions import heartbeat_line
from connectors.flink_sink_files import committed_files, sink_rows

log = logging.getLogger(__name__)

_STATE_FILE = "_publisher.json"  # underscore: Flink's file source skips it
_KEEP_PROGRESS_FILES = 3


class SpoolWriter:
    """Writes polls' stream lines into spool files, atomically.

    ``durable=True`` (live polls, which cannot be fetched again) fsyncs every file. ``batch_bytes`` > 0 (a
    replay as fast as possible) gathers consecutive polls into one file of about that size, named after its
    first poll: creating a file costs more than writing 8 MB. ``flush()`` writes what is gathered (the
    poller calls it when it stops); ``on_flush(poll)`` is told the last poll written, so that a replay
    records how far it got only once it is on disk."""

    def __init__(self, spool_dir: Path, durable: bool = True, batch_bytes: int = 0,
                 on_flush: Callable[[Poll], object] | None = None) -> None:
        self.spool_dir = Path(spool_dir)
        self.durable = durable
        self.batch_bytes = batch_bytes
        self.on_flush = on_flush
        self._sequence = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._first: Poll | None = None
        self._last: Poll | None = None

    def write(self, poll: Poll) -> None:
        text = poll.lines.text
        if self._first is None:
            self._first = poll
        self._last = poll
        self._pending.append(text)
        self._pending_bytes += len(text)
        if self._pending_bytes >= self.batch_bytes:
            self.flush()

    def flush(self) -> Path | None:
        if self._first is None or self._last is None:
            return None
        first, last = self._first, self._last
        moment = datetime.fromtimestamp(first.polled_at, tz=timezone.utc)
        if first.key is None:
            self._sequence += 1
            key = f"{os.getpid()}-{self._sequence:06d}"
        else:
            key = first.key
        name = f"poll-{int(first.polled_at * 1000):015d}-{key}.jsonl"
        path = self.spool_dir / f"date={moment:%Y-%m-%d}" / f"hour={moment:%H}" / name
        atomic_write(path, self._pending, durable=self.durable)
        self._pending, self._pending_bytes, self._first, self._last = [], 0, None, None
        if self.on_flush is not None:
            self.on_flush(last)
        return path


def spool_files(spool_dir: Path, after: str = "") -> list[str]:
    """Spool files as relative paths, sorted (so by poll time); with ``after``, only those sorting after it."""
    return list(_spool_files_after(spool_dir, after))


def has_spool_files(spool_dir: Path, after: str = "") -> bool:
    """Whether any spool file sorts after ``after``: the partitions are looked at in order only until one is found
    (the feed publisher and the run ask several times a second, and a long replay's backlog spans hundreds of hours)."""
    return next(_spool_files_after(spool_dir, after), None) is not None


def _spool_files_after(spool_dir: Path, after: str) -> Iterator[str]:
    """Spool files sorting after ``after`` (all with ""), in order, partition by partition; partitions (days, hours)
    before ``after``'s own are not listed."""
    if not spool_dir.exists():
        return
    after_hour = str(Path(after).parent) if after else ""
    after_day = after_hour.split("/")[0]
    for day in sorted(spool_dir.glob("date=*")):
        if day.name < after_day:
            continue
        for hour in sorted(day.glob("hour=*")):
            partition = f"{day.name}/{hour.name}"
            if partition < after_hour:
                continue
            yield from sorted(name for path in hour.glob("poll-*.jsonl") if (name := f"{partition}/{path.name}") > after)


def last_poll_time(spool_file: Path) -> float:
    """Poll time of the last poll in a spool file: its last line is that poll's heartbeat."""
    with open(spool_file, "rb") as handle:
        handle.seek(max(0, spool_file.stat().st_size - 4096))
        last = handle.read().splitlines()[-1]
    return float(json.loads(last)["polled_at"])


class ProgressLog:
    """The job's committed progress: the publication numbers it has read and checkpointed.

    The job writes one row per publication heartbeat into ``progress_dir`` with Flink's file sink, which
    makes a file visible only when the checkpoint that covers it completes (in-progress files are hidden).
    Older files are pruned once read: the newest holds the highest number."""

    def __init__(self, progress_dir: Path, roll_s: float) -> None:
        self.progress_dir = Path(progress_dir)
        self.roll_s = roll_s  # how soon the sink rolls a part file (job/flow/sql_pipeline.py PROGRESS_ROLL_S)
        self._highest = 0

    def highest(self) -> int:
        committed = committed_files(self.progress_dir)
        for path in committed:
            for row in sink_rows(path):
                if isinstance(row.get("publication"), int):
                    self._highest = max(self._highest, row["publication"])
        for path in committed[:-_KEEP_PROGRESS_FILES]:
            path.unlink(missing_ok=True)
        return self._highest

    def awaiting_checkpoint(self) -> bool:
        """Whether the job wrote progress that only a checkpoint can commit: a hidden part file, old
        enough for the sink to have rolled it. Asking for checkpoints only then keeps them off the job's
        back while it reads."""
        if not self.progress_dir.is_dir():
            return False
        now = time.time()
        for path in self.progress_dir.glob(".part-*"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if stat.st_size and now - stat.st_mtime >= self.roll_s:
                return True
        return False


class FeedPublisher:
    """Publishes the spool to the feed directory in poll order (see the module docstring).

    ``committed()`` returns the highest publication the job has read and checkpointed; ``request_checkpoint``
    (optional) asks the job for a checkpoint while a publication waits for one. ``closing_after_s`` (a bounded
    replay's run): once ``input_ended()`` says the spool is complete, the last publication ends with a heartbeat
    that much after its last poll instead of at it, moving event time past the replay so that every window
    closes without one more publication round. ``durable``: fsync each feed file, as durable as the spool it is
    made of (a replay's spool is not: the recording is there to write it again)."""

    def __init__(self, spool_dir: Path, feed_dir: Path, committed: Callable[[], int] | None = None,
                 request_checkpoint: Callable[[], object] | None = None,
                 input_ended: Callable[[], bool] | None = None, closing_after_s: float | None = None,
                 durable: bool = True) -> None:
        self.spool_dir = Path(spool_dir)
        self.durable = durable
        self.feed_dir = Path(feed_dir)
        self.feed_dir.mkdir(parents=True, exist_ok=True)
        self.committed = committed
        self.request_checkpoint = request_checkpoint
        self.input_ended = input_ended
        self.closing_after_s = closing_after_s

    def _state(self) -> dict[str, Any]:
        try:
            return json.loads((self.feed_dir / _STATE_FILE).read_text())
        except FileNotFoundError:
            return {"through": "", "next": 1}

    def _save(self, state: dict[str, Any]) -> None:
        atomic_write(self.feed_dir / _STATE_FILE, json.dumps(state).encode())

    @property
    def published(self) -> int:
        """How many publications were made (the number of the newest)."""
        return self._state()["next"] - 1

    def last_poll_time(self) -> float | None:
        """The poll time of the newest poll published (None before the first publication)."""
        through = self._state()["through"]
        return last_poll_time(self.spool_dir / through) if through else None

    def has_backlog(self) -> bool:
        """Whether the spool holds a file not yet published."""
        return has_spool_files(self.spool_dir, after=self._state()["through"])

    def read_by_job(self) -> bool:
        """Whether the job has read and checkpointed every publication."""
        published = self.published
        return published == 0 or (self.committed is not None and self.committed() >= published)

    def publish(self) -> Path | None:
        """Publish every spool file not yet in the feed as one feed file; None when there is nothing new
        or the job has not read and checkpointed the previous publication yet."""
        state = self._state()
        pending = state.get("pending")
        if pending is None:
            # Asked before the listing: if the input had ended then, the listing holds all of it.
            ending = self.closing_after_s is not None and self.input_ended is not None and self.input_ended()
            if not self.read_by_job():  # nothing can be published yet: the backlog is not listed, only looked for
                if self.request_checkpoint is not None and has_spool_files(self.spool_dir, after=state["through"]):
                    self.request_checkpoint()
                return None
            names = spool_files(self.spool_dir, after=state["through"])
            if not names:
                return None
            pending = {"from": state["through"], "through": names[-1], "number": state["next"],
                       "closing_after_s": self.closing_after_s if ending else 0}
            self._save({**state, "pending": pending})
        else:  # redo an interrupted publication: exactly its recorded range
            names = [name for name in spool_files(self.spool_dir, after=pending["from"]) if name <= pending["through"]]
        closing_after_s = pending.get("closing_after_s", 0)
        marker_at = last_poll_time(self.spool_dir / pending["through"]) + closing_after_s
        marker = heartbeat_line(marker_at, publication=pending["number"]) + b"\n"
        target = self.feed_dir / f"feed-{pending['number']:09d}.jsonl"
        atomic_write(target, [*(self.spool_dir / name for name in names), marker], durable=self.durable)
        self._save({"through": pending["through"], "next": pending["number"] + 1, "closed": bool(closing_after_s)})
        return target

    @property
    def closed(self) -> bool:
        """Whether the newest publication ended the input with a closing heartbeat (see ``closing_after_s``)."""
        return bool(self._state().get("closed"))

    def publish_heartbeat(self, at: float) -> Path:
        """Publish a file holding only a heartbeat at ``at`` (which must be after every poll published):
        the end of a replay, moving event time past its last transactions so that every window closes."""
        state = self._state()
        number = state["next"]
        target = self.feed_dir / f"feed-{number:09d}.jsonl"
        atomic_write(target, heartbeat_line(at, publication=number) + b"\n", durable=self.durable)
        self._save({**state, "next": number + 1, "closed": True})
        return target

    def run(self, stop: threading.Event, interval_s: float = 1.0) -> None:
        """Publish every ``interval_s`` until ``stop``."""
        while not stop.wait(interval_s):
            try:
                self.publish()
            except OSError:
                log.exception("publishing the spool to the feed failed; retrying")
