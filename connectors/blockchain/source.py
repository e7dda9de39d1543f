"""Where polls come from: the live blockchain.com API, or a recording replayed at a chosen speed.

A poll is the API's page (``{"txs": [...]}``, ~100 most recent unconfirmed transactions, newest first)
plus the moment it was taken. A recording is one JSON line per poll: ``{"polled_at": ..., "txs": [...]}``.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import urllib3
from urllib3.util import Retry, Timeout

log = logging.getLogger(__name__)

LIVE_URL = "https://blockchain.info/unconfirmed-transactions?format=json"


@dataclass
class Poll:
    polled_at: float
    txs: list[dict[str, Any]] = field(default_factory=list)

    def hashes(self) -> set[str]:
        return {tx["hash"] for tx in self.txs if isinstance(tx, dict) and "hash" in tx}

    def to_json(self) -> str:
        return json.dumps({"polled_at": self.polled_at, "txs": self.txs}, separators=(",", ":"))


class SourceUnavailable(RuntimeError):
    """The source could not be read this time (network down, HTTP error, bad page); the poller goes on."""


class LiveSource:
    """GET the unconfirmed-transactions page with timeouts and retries with backoff (urllib3)."""

    def __init__(self, url: str = LIVE_URL, connect_timeout_s: float = 5, read_timeout_s: float = 10,
                 retries: int = 3) -> None:
        self.url = url
        retry = Retry(total=retries, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
                      allowed_methods=("GET",), raise_on_status=False)
        self._http = urllib3.PoolManager(retries=retry, timeout=Timeout(connect=connect_timeout_s,
                                                                       read=read_timeout_s))

    def fetch(self) -> Poll:
        polled_at = time.time()
        try:
            response = self._http.request("GET", self.url, headers={"Accept": "application/json"})
        except urllib3.exceptions.HTTPError as error:
            raise SourceUnavailable(f"cannot reach {self.url}: {_root_cause(error)} (is the network up?)") from None
        if response.status != 200:
            raise SourceUnavailable(f"{self.url} answered HTTP {response.status}")
        try:
            page = json.loads(response.data)
            txs = page["txs"]
        except (ValueError, KeyError, TypeError):
            raise SourceUnavailable(f"{self.url} returned a page without a 'txs' list") from None
        if not isinstance(txs, list):
            raise SourceUnavailable(f"{self.url} returned 'txs' that is not a list")
        return Poll(polled_at=polled_at, txs=txs)


def _root_cause(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    return str(reason or error)


class RecordingWriter:
    """Appends polls to a recording, one JSON line each, flushed per poll (.gz: one gzip member per poll)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, poll: Poll) -> None:
        data = (poll.to_json() + "\n").encode()
        if str(self.path).endswith(".gz"):
            data = gzip.compress(data, mtime=0)
        with open(self.path, "ab") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())


def read_recording(path: Path) -> Iterator[Poll]:
    """Polls from a recording (.jsonl or .jsonl.gz); a truncated last line (a crash while recording) is skipped."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                yield Poll(polled_at=float(entry["polled_at"]), txs=list(entry["txs"]))
            except (ValueError, KeyError, TypeError):
                log.warning("%s:%d is not a recorded poll; skipped", path, number)


class ReplaySource:
    """Replays a recording. ``speed`` 1 = the original pace, 10 = ten times faster, 0 = as fast as possible.

    At speed > 0, transaction and poll times are shifted so the first poll happens now (to the minute:
    the shift is whole minutes, so windows hold the same transactions at every speed), and polls are paced
    like the original, scaled by speed: a replay looks live. At speed 0, times are left as recorded.
    ``start_index`` skips polls already replayed (resuming); ``origin`` keeps the shift of the first run.
    """

    def __init__(self, path: Path, speed: float = 1.0, start_index: int = 0, origin: float | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.path = Path(path)
        self.speed = speed
        self.index = start_index
        self.origin = origin  # wall-clock time at which the recording's first poll is replayed
        self._clock, self._sleep = clock, sleep
        self._polls = list(read_recording(self.path))
        if not self._polls:
            raise ValueError(f"{self.path} holds no polls")
        self.first_polled_at = self._polls[0].polled_at

    def __len__(self) -> int:
        return len(self._polls)

    @property
    def done(self) -> bool:
        return self.index >= len(self._polls)

    def fetch(self) -> Poll:
        if self.done:
            raise StopIteration
        recorded = self._polls[self.index]
        self.index += 1
        if self.speed == 0:
            return recorded
        if self.origin is None:
            self.origin = self._clock()
        offset = (recorded.polled_at - self.first_polled_at) / self.speed
        wait = self.origin + offset - self._clock()
        if wait > 0:
            self._sleep(wait)
        return shift_poll(recorded, self.shift_s)

    @property
    def shift_s(self) -> int:
        """How far a replay moves times: whole minutes, so every speed gives the recording's own windows."""
        if self.speed == 0 or self.origin is None:
            return 0
        return int((self.origin - self.first_polled_at) // 60 * 60)


def shift_poll(poll: Poll, seconds: float) -> Poll:
    """The same poll ``seconds`` later: polled_at and every transaction's ``time`` move together."""
    shifted = []
    for tx in poll.txs:
        if isinstance(tx, dict) and isinstance(tx.get("time"), (int, float)) and not isinstance(tx["time"], bool):
            tx = {**tx, "time": int(round(tx["time"] + seconds))}
        shifted.append(tx)
    return Poll(polled_at=poll.polled_at + seconds, txs=shifted)
