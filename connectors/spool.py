"""The local stream: the spool (raw archive the poller writes) and the feed (what the Flink job reads).

spool/date=YYYY-MM-DD/hour=HH/poll-<ms>-<seq>.jsonl — one file per poll, written atomically (a hidden temp
name, then a rename): one JSON line per transaction (all API fields plus ``polled_at``) and a heartbeat
line that carries the event-time clock forward when a poll brings nothing new.

feed/feed-<n>.jsonl — the spool published in order. Flink's file source reads the files it discovers in
one scan in no particular order, so a backlog read straight from the spool would put transactions behind
the watermark. The publisher therefore hands Flink at most one file per interval, each holding every
spool file not yet published, concatenated in poll order: the job's results do not depend on discovery
order or replay speed. A publication's range is recorded before its file is written and the file's name
derives from it, so a crash at any point is redone identically, never duplicated.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from connectors.blockchain.source import Poll

log = logging.getLogger(__name__)

_STATE_FILE = "_publisher.json"  # underscore: Flink's file source skips it


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see all of it or nothing (hidden temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.tmp"
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def poll_lines(poll: Poll) -> list[str]:
    """The spool lines of a poll: each transaction with polled_at, then the heartbeat."""
    lines = []
    for tx in poll.txs:
        record = {**tx, "polled_at": poll.polled_at} if isinstance(tx, dict) else tx
        lines.append(json.dumps(record, separators=(",", ":")))
    lines.append(json.dumps({"heartbeat": True, "time": int(poll.polled_at), "polled_at": poll.polled_at}))
    return lines


class SpoolWriter:
    def __init__(self, spool_dir: Path) -> None:
        self.spool_dir = Path(spool_dir)
        self._sequence = 0

    def write(self, poll: Poll) -> Path:
        moment = datetime.fromtimestamp(poll.polled_at, tz=timezone.utc)
        self._sequence += 1
        name = f"poll-{int(poll.polled_at * 1000):015d}-{os.getpid()}-{self._sequence:06d}.jsonl"
        path = self.spool_dir / f"date={moment:%Y-%m-%d}" / f"hour={moment:%H}" / name
        atomic_write(path, ("\n".join(poll_lines(poll)) + "\n").encode())
        return path


def spool_files(spool_dir: Path) -> list[str]:
    """Published-or-not spool files as relative paths; sorting them sorts by poll time."""
    if not spool_dir.exists():
        return []
    return sorted(
        str(path.relative_to(spool_dir))
        for path in spool_dir.rglob("poll-*.jsonl")
    )


class FeedPublisher:
    """Publishes the spool to the feed directory in poll order (see the module docstring).

    ``ready(heartbeat_time)`` is flow control: a new file is published only once the job has read the
    previous one (its watermark has reached that file's last heartbeat), so Flink never has two unread
    feed files to read in the wrong order.
    """

    def __init__(self, spool_dir: Path, feed_dir: Path, ready: Callable[[int], bool] | None = None) -> None:
        self.spool_dir = Path(spool_dir)
        self.feed_dir = Path(feed_dir)
        self.feed_dir.mkdir(parents=True, exist_ok=True)
        self.ready = ready

    def _state(self) -> dict[str, Any]:
        try:
            return json.loads((self.feed_dir / _STATE_FILE).read_text())
        except FileNotFoundError:
            return {"through": "", "next": 1}

    def _save(self, state: dict[str, Any]) -> None:
        atomic_write(self.feed_dir / _STATE_FILE, json.dumps(state).encode())

    def backlog(self) -> list[str]:
        through = self._state()["through"]
        return [name for name in spool_files(self.spool_dir) if name > through]

    @property
    def last_heartbeat(self) -> int | None:
        """Heartbeat time of the newest published poll (its file name carries the poll time in ms)."""
        through = self._state()["through"]
        return poll_time_of(through) if through else None

    def publish(self) -> Path | None:
        """Publish every spool file not yet in the feed as one feed file; None when there is nothing new
        or the job has not read the previous file yet."""
        state = self._state()
        pending = state.get("pending")
        if pending is None:
            names = [name for name in spool_files(self.spool_dir) if name > state["through"]]
            if not names:
                return None
            if self.ready and state["through"] and not self.ready(poll_time_of(state["through"])):
                return None
            pending = {"from": state["through"], "through": names[-1], "number": state["next"]}
            self._save({**state, "pending": pending})
        else:  # redo an interrupted publication: exactly its recorded range
            names = [name for name in spool_files(self.spool_dir) if pending["from"] < name <= pending["through"]]
        content = b"".join((self.spool_dir / name).read_bytes() for name in names)
        target = self.feed_dir / f"feed-{pending['number']:09d}.jsonl"
        atomic_write(target, content)
        self._save({"through": pending["through"], "next": pending["number"] + 1})
        return target

    def consolidate(self, published_after: float) -> Path | None:
        """Merge the feed files published after ``published_after`` (mtime) into one, in order.

        Used before a job restores from a checkpoint: the files published after it will be read again,
        all at once, and must be one ordered file. Files the checkpoint had already read may be merged
        too; their transactions are then dropped as duplicates by the restored dedup state.
        """
        files = sorted(path for path in self.feed_dir.glob("feed-*.jsonl") if path.stat().st_mtime >= published_after)
        if len(files) < 2:
            return None
        state = self._state()
        target = self.feed_dir / f"feed-{state['next']:09d}.jsonl"
        atomic_write(target, b"".join(path.read_bytes() for path in files))
        self._save({**state, "next": state["next"] + 1})
        for path in files:
            path.unlink()
        return target

    def run(self, stop: threading.Event, interval_s: float = 2.0) -> None:
        """Publish every ``interval_s`` (keep it above the job's source monitor interval) until ``stop``."""
        while not stop.wait(interval_s):
            try:
                self.publish()
            except OSError:
                log.exception("publishing the spool to the feed failed; retrying")


def poll_time_of(spool_name: str) -> int:
    """Poll time (unix seconds) from a spool file name ``.../poll-<ms>-<pid>-<seq>.jsonl``."""
    return int(Path(spool_name).name.split("-")[1]) // 1000
