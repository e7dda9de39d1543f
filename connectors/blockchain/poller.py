"""The poller: takes polls from a source, detects gaps, and hands each poll to a writer (spool, Kinesis).

A gap is a poll whose transactions share nothing with the previous poll's: transactions between the two
were missed. The poller counts it, logs it, and halves its interval (down to ``min_interval_s``) until
consecutive polls overlap again; then it eases back to ``interval_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from connectors.blockchain.source import Poll, RecordingError, ReplaySource, SourceUnavailable

log = logging.getLogger(__name__)


class PollSource(Protocol):
    def fetch(self) -> Poll: ...


class PollWriter(Protocol):
    def write(self, poll: Poll) -> object: ...


class FanOut:
    """A writer that hands each poll to several writers in turn (e.g. the spool, then the raw archive)."""

    def __init__(self, *writers: PollWriter) -> None:
        self.writers = writers

    def write(self, poll: Poll) -> None:
        for writer in self.writers:
            writer.write(poll)

    def flush(self) -> None:
        for writer in self.writers:
            flush = getattr(writer, "flush", None)
            if flush is not None:
                flush()


@dataclass
class PollerStats:
    polls: int = 0
    transactions: int = 0
    gaps: int = 0
    errors: int = 0
    interval_s: float = 0.0
    last_polled_at: float | None = None
    last_error: str = ""
    finished: bool = False
    finished_at: float | None = None  # time.monotonic() when the poller stopped
    ran_out: bool = False  # the source has no more polls (a replay's end; not a stop), everything written
    fatal_error: str = ""  # why the poller stopped for good (an unreadable recording)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def snapshot(self) -> dict[str, object]:
        with self.lock:
            return {k: v for k, v in self.__dict__.items() if k != "lock"}


class Poller:
    def __init__(
        self,
        source: PollSource,
        writer: PollWriter,
        interval_s: float = 15.0,
        min_interval_s: float = 5.0,
        on_poll: Callable[[Poll], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_finish: Callable[[], None] | None = None,
    ) -> None:
        if not 0 < min_interval_s <= interval_s:
            raise ValueError("need 0 < min_interval_s <= interval_s")
        self.source = source
        self.writer = writer
        self.base_interval_s = interval_s
        self.min_interval_s = min_interval_s
        self.stats = PollerStats(interval_s=interval_s)
        self._previous: set[str] | None = None
        self._on_poll = on_poll
        self._on_finish = on_finish
        self._sleep = sleep

    @property
    def paced_by_source(self) -> bool:
        """A replay sleeps in fetch() to keep the recording's pace; the live source needs the poller's sleep."""
        return isinstance(self.source, ReplaySource)

    def poll_once(self) -> Poll | None:
        """One poll; None when the source failed this time (counted and logged, not raised)."""
        try:
            poll = self.source.fetch()
        except SourceUnavailable as error:
            with self.stats.lock:
                self.stats.errors += 1
                self.stats.last_error = str(error)
            log.warning("poll failed: %s; next try in %.0fs", error, self.stats.interval_s)
            return None
        hashes = poll.hashes()
        gap = bool(self._previous) and bool(hashes) and not (hashes & self._previous)
        self.writer.write(poll)
        with self.stats.lock:
            self.stats.polls += 1
            self.stats.transactions += poll.lines.transactions
            self.stats.last_polled_at = poll.polled_at
            if gap:
                self.stats.gaps += 1
                self.stats.interval_s = max(self.min_interval_s, self.stats.interval_s / 2)
            elif self._previous is not None:
                self.stats.interval_s = min(self.base_interval_s, self.stats.interval_s * 1.5)
        if gap and self.paced_by_source:
            log.info("gap in the recording: poll at %.0f shares no transaction with the previous poll", poll.polled_at)
        elif gap:
            log.warning(
                "gap: poll at %.0f shares no transaction with the previous poll; transactions were missed. "
                "Polling every %.1fs until polls overlap again", poll.polled_at, self.stats.interval_s,
            )
        if hashes:
            self._previous = hashes
        if self._on_poll:
            self._on_poll(poll)
        return poll

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set or a replay runs out (or cannot be read on: ``stats.fatal_error``)."""
        ran_out = False
        try:
            while not stop.is_set():
                try:
                    self.poll_once()
                except StopIteration:
                    ran_out = True
                    break
                if not self.paced_by_source and stop.wait(self.stats.interval_s):
                    break
        except RecordingError as error:
            log.error("%s", error)
            with self.stats.lock:
                self.stats.fatal_error = str(error)
        finally:
            flush = getattr(self.writer, "flush", None)
            if flush is not None:  # a writer that gathers polls writes what it holds
                flush()
            if self._on_finish:
                self._on_finish()
            with self.stats.lock:
                self.stats.finished = True
                self.stats.ran_out = ran_out
                self.stats.finished_at = time.monotonic()
