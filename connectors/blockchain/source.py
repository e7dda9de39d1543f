"""Where polls come from: the live blockchain.com API, or a recording replayed at a chosen speed.

A poll is the API's page (``{"txs": [...]}``, ~100 most recent unconfirmed transactions, newest first)
plus the moment it was taken. A recording is one JSON line per poll: ``{"polled_at": ..., "txs": [...]}``.
"""

from __future__ import annotations

import gzip
import logging
import os
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec
import urllib3
from urllib3.util import Retry, Timeout

from connectors.blockchain.transactions import (
    PollLines,
    decode_json,
    encode_json,
    heartbeat_line,
    rejected_line,
    split_poll,
    split_recorded_poll,
)

log = logging.getLogger(__name__)

LIVE_URL = "https://blockchain.info/unconfirmed-transactions?format=json"
# 65 minutes of the live API, recorded (recordings/README.md): what `chainfeat run` replays unless told otherwise.
BUNDLED_RECORDING = Path(__file__).resolve().parent / "recordings" / "unconfirmed-65min.jsonl.gz"
READ_BUFFER = 1 << 20  # bytes read at a time from a recording


class Poll:
    """One poll: when it was taken and its page, the API's JSON object with a ``txs`` list.

    The page is kept as the raw bytes received (a recording line is such a page, with ``polled_at``), so
    that splitting it into stream lines (connectors/blockchain/transactions.py) needs one fast decode and
    no re-encoding. ``txs`` decodes it on demand (tests, time-shifted replays); a poll can also be built
    from decoded ``txs``. ``problem`` marks a recording line that is not a poll: it becomes a dead-letter line.
    ``key`` names a replayed poll by its place in the recording (the spool file of a poll replayed twice is
    then written twice, not added twice).
    """

    def __init__(self, polled_at: float, txs: list[Any] | None = None, page: bytes | None = None,
                 problem: str | None = None, key: str | None = None) -> None:
        if (txs is None) == (page is None):
            raise ValueError("a Poll needs either txs or page")
        self.polled_at = polled_at
        self._txs = txs
        self._page = page
        self.problem = problem
        self.key = key
        self._lines: PollLines | None = None

    @property
    def page(self) -> bytes:
        if self._page is None:
            self._page = encode_json({"txs": self._txs})
        return self._page

    @property
    def txs(self) -> list[Any]:
        """The page's transactions, decoded ([] for a page without a txs list)."""
        if self._txs is None:
            self._txs = _decoded_txs(self.page) or []
        return self._txs

    @property
    def lines(self) -> PollLines:
        """The poll as stream lines (computed once)."""
        if self._lines is None:
            if self.problem:  # one rejected line, then the heartbeat every poll's lines end with
                text = rejected_line(self.page, self.problem) + b"\n" + heartbeat_line(self.polled_at) + b"\n"
                self._lines = PollLines(self.polled_at, text, [None, None], rejected=1)
            else:
                self._lines = split_poll(self.page, self.polled_at)
        return self._lines

    def hashes(self) -> set[bytes]:
        return self.lines.hashes

    def to_json(self) -> str:
        """The poll as a recording line: ``{"polled_at": ..., "txs": [...]}`` (the txs exactly as received)."""
        if self._txs is not None:
            return encode_json({"polled_at": self.polled_at, "txs": self._txs}).decode()
        txs = _TXS.decode(self.page).txs
        return encode_json({"polled_at": self.polled_at, "txs": txs}).decode()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Poll) and (self.polled_at, self.txs) == (other.polled_at, other.txs)

    def __repr__(self) -> str:
        return f"Poll(polled_at={self.polled_at}, {len(self.page)} bytes)"


def _decoded_txs(page: bytes) -> list[Any] | None:
    try:
        decoded = decode_json(page)
    except (msgspec.DecodeError, RecursionError):
        return None
    txs = decoded.get("txs") if isinstance(decoded, dict) else None
    return list(txs) if isinstance(txs, list) else None


class _RawTxs(msgspec.Struct):
    txs: msgspec.Raw


class _Stamp(msgspec.Struct):
    polled_at: float


_TXS = msgspec.json.Decoder(_RawTxs)
_STAMP = msgspec.json.Decoder(_Stamp)


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
            _TXS.decode(response.data)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            raise SourceUnavailable(f"{self.url} returned a page without a 'txs' list") from None
        return Poll(polled_at=polled_at, page=response.data)


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


class ArchiveWriter:
    """The raw archive of live polls: each poll appended, as received, to a recording per hour
    (``<directory>/date=YYYY-MM-DD/hour=HH/polls.jsonl``): what the stream lines leave out (of inputs and outputs
    all but address and value) is kept there, and `chainfeat run --recording` can replay any hour of it."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def write(self, poll: Poll) -> None:
        moment = datetime.fromtimestamp(poll.polled_at, tz=timezone.utc)
        RecordingWriter(self.directory / f"date={moment:%Y-%m-%d}" / f"hour={moment:%H}" / "polls.jsonl").write(poll)


class RecordingError(RuntimeError):
    """A recording that cannot be read on (a corrupt or truncated gzip file, an unreadable file)."""


def read_recording(path: Path, skip: int = 0) -> Iterator[Poll]:
    """Polls from a recording (.jsonl or .jsonl.gz), one per line, as raw pages. A line that is not a poll
    comes as a Poll with a ``problem`` (it goes to the dead letter), stamped with the previous poll's time;
    a truncated last line (a crash while recording) is skipped with a warning. ``skip``: how many polls to pass
    over first (a resumed replay's), only their times read: splitting them would cost as much as replaying them."""
    previous = 0.0
    number = 0
    try:
        # A poll's line is ~60 KB: read in 1 MiB blocks, not io's 8 KiB (0.7 -> 0.3 CPU-s for 1 M transactions).
        with gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb", buffering=READ_BUFFER) as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                if skip > 0:
                    skip -= 1
                    stamp = _poll_time(line)
                    previous = previous if stamp is None else stamp
                    continue
                poll, previous = _recorded_poll(line, previous, path, number)
                if poll.problem and not line.endswith(b"\n"):  # only the last line can lack its newline
                    log.warning("%s:%d is a truncated last line (a crash while recording?); skipped", path, number)
                    continue
                yield poll
    except (OSError, EOFError, zlib.error) as error:
        if number == 0:
            raise RecordingError(f"{path} cannot be read: {error}. A recording is JSON lines, one poll each, "
                                 "optionally gzip-compressed (.gz); check the file or record it again") from None
        raise RecordingError(f"{path} cannot be read after line {number}: {error}. The polls before it were "
                             "replayed; repair or re-record the file to replay the rest") from None


def last_polled_at(path: Path) -> float | None:
    """When a recording's last poll was taken (None: it holds none), as read_recording would replay it, without
    decoding the polls: a plain file is read from its end, a gzip one is decompressed but only its last lines parsed."""
    if str(path).endswith(".gz"):
        tail: list[bytes] = []
        with gzip.open(path, "rb") as lines:
            for line in lines:
                if line.strip():
                    tail = [*tail[-1:], line]
        return _last_stamp(tail)
    with open(path, "rb") as recording:
        size = recording.seek(0, os.SEEK_END)
        block = READ_BUFFER
        while True:  # a block that holds the last line whole (and the one before, if that one is truncated)
            recording.seek(max(0, size - block))
            lines = [line for line in recording.read().splitlines(keepends=True) if line.strip()]
            if size <= block or len(lines) > 2:
                return _last_stamp(lines if size <= block else lines[1:])
            block *= 2


def _last_stamp(lines: list[bytes]) -> float | None:
    """The newest poll time among a recording's last lines: a line that is not a poll is stamped with the one before."""
    return next((stamp for line in reversed(lines) if (stamp := _poll_time(line)) is not None), None)


def _recorded_poll(line: bytes, previous: float, path: Path, number: int) -> tuple[Poll, float]:
    page = line.rstrip(b"\r\n")
    lines = split_recorded_poll(page)
    if lines is not None:  # the usual case: decoded and split at once
        poll = Poll(lines.polled_at, page=page)
        poll._lines = lines
        return poll, lines.polled_at
    polled_at = _poll_time(page)
    if polled_at is None:
        return Poll(previous, page=page, problem=f"{path.name}:{number} is not a recorded poll "
                                                  "(a JSON object with polled_at and txs)"), previous
    return Poll(polled_at, page=page), polled_at


def _poll_time(page: bytes) -> float | None:
    """A recording line's polled_at, read without decoding its transactions; None if it is not a recorded poll."""
    try:
        return float(_STAMP.decode(page).polled_at)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None


class ReplaySource:
    """Replays a recording. ``speed`` 1 = the original pace, 10 = ten times faster, 0 = as fast as possible.

    At speed > 0, transaction and poll times are shifted so the first poll happens now (to the minute:
    the shift is whole minutes, so windows hold the same transactions at every speed), and polls are paced
    like the original, scaled by speed: a replay looks live. At speed 0, polls are handed on as recorded,
    raw. The recording is streamed, never held in memory. ``start_index`` skips polls already replayed
    (resuming); ``origin`` keeps the shift of the first run.
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
        first = next(read_recording(self.path), None)
        if first is None:
            raise ValueError(f"{self.path} holds no polls")
        self.first_polled_at = first.polled_at
        self._polls = read_recording(self.path, skip=start_index)
        self._next = next(self._polls, None)

    @property
    def done(self) -> bool:
        return self._next is None

    def start_now(self) -> None:
        """Fix the time shift now rather than at the first poll (a paced replay's first poll then happens now)."""
        if self.speed > 0 and self.origin is None:
            self.origin = self._clock()

    @property
    def first_poll_time(self) -> float:
        """When the replay's first poll happens (its shift applied; start_now() fixes the shift)."""
        return self.first_polled_at + self.shift_s

    def last_poll_time(self) -> float:
        """When the replay's last poll happens (its shift applied)."""
        last = last_polled_at(self.path)
        return (last if last is not None else self.first_polled_at) + self.shift_s

    def fetch(self) -> Poll:
        if self._next is None:
            raise StopIteration
        recorded = self._next
        recorded.key = f"r{self.index:09d}"
        self._next = next(self._polls, None)
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
    txs = None if poll.problem else _decoded_txs(poll.page)
    if txs is None:  # not a poll: it goes to the dead letter as it is
        return Poll(poll.polled_at + seconds, page=poll.page, problem=poll.problem, key=poll.key)
    shifted = []
    for tx in txs:
        if isinstance(tx, dict) and isinstance(tx.get("time"), (int, float)) and not isinstance(tx["time"], bool):
            tx = {**tx, "time": int(round(tx["time"] + seconds))}
        shifted.append(tx)
    return Poll(polled_at=poll.polled_at + seconds, txs=shifted, key=poll.key)
