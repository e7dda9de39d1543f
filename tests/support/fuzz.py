"""A fuzz corpus: a recording with malformed input mixed in, each piece of which must become exactly one
dead-letter line (bench/reliability.py; its fast subset runs in the tests).

Two families: entries of a poll's ``txs`` that cannot be a valid transaction (the poller or the job rejects
each), and recording lines that are not a poll at all. Times are relative to the poll they are put in, so
"too old" and "in the future" mean the same in every poll. Empty lines are not in the corpus: they carry
nothing and the recording reader skips them.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connectors.blockchain.source import read_recording

HEX = "0123456789abcdef"
DAY_S = 24 * 3600


def _valid_hash(rng: random.Random) -> str:
    return "".join(rng.choice(HEX) for _ in range(64))


def _entry(rng: random.Random, polled_at: float, **fields: Any) -> dict[str, Any]:
    """A transaction entry that is valid but for ``fields`` (a field set to ... is removed)."""
    entry = {"hash": _valid_hash(rng), "time": int(polled_at) - rng.randint(0, 20), "fee": rng.randint(200, 9000),
             "size": 250, "vin_sz": 1, "vout_sz": 2, "inputs": [{}], "out": [{}, {}]}
    entry.update(fields)
    return {key: value for key, value in entry.items() if value is not ...}


# Malformed entries of a poll's txs, by kind: (rng, the poll's time) -> the entry.
ENTRY_KINDS: dict[str, Callable[[random.Random, float], Any]] = {
    "entry is a number": lambda rng, at: rng.randint(-9, 9),
    "entry is a list": lambda rng, at: [1, 2, 3],
    "entry is a string": lambda rng, at: "a transaction",
    "entry is null": lambda rng, at: None,
    "hash missing": lambda rng, at: _entry(rng, at, hash=...),
    "time missing": lambda rng, at: _entry(rng, at, time=...),
    "fee missing": lambda rng, at: _entry(rng, at, fee=...),
    "fee is text": lambda rng, at: _entry(rng, at, fee="abc"),
    "fee is a fraction": lambda rng, at: _entry(rng, at, fee=1.5),
    "fee is negative": lambda rng, at: _entry(rng, at, fee=-rng.randint(1, 1000)),
    "fee beyond 64 bits": lambda rng, at: _entry(rng, at, fee=2**70),
    "time is text": lambda rng, at: _entry(rng, at, time="yesterday"),
    "time is a boolean": lambda rng, at: _entry(rng, at, time=True),
    "time in 1970": lambda rng, at: _entry(rng, at, time=rng.randint(1, 10**6)),
    "time far in the future": lambda rng, at: _entry(rng, at, time=int(at) + 100_000),
    "time weeks old": lambda rng, at: _entry(rng, at, time=int(at) - 15 * DAY_S),
    "hash not hex": lambda rng, at: _entry(rng, at, hash="not-a-transaction-id"),
    "hash upper case": lambda rng, at: _entry(rng, at, hash=_valid_hash(rng).upper().replace("0", "A")),
    "hash of 10 KB": lambda rng, at: _entry(rng, at, hash="ab" * 5000),
    "hash with non-ASCII": lambda rng, at: _entry(rng, at, hash="0" * 63 + "\u00e9"),
    "hash of emoji": lambda rng, at: _entry(rng, at, hash="\U0001f600" * 16),
    "hash is a list": lambda rng, at: _entry(rng, at, hash=["a", "list"]),
    "hash is a number": lambda rng, at: _entry(rng, at, hash=12345),
    "size is text": lambda rng, at: _entry(rng, at, size="big"),
    "size beyond 32 bits": lambda rng, at: _entry(rng, at, size=2**40),
    "ver is a fraction": lambda rng, at: _entry(rng, at, ver=1.5),
    "double_spend is text": lambda rng, at: _entry(rng, at, double_spend="maybe"),
    "inputs is not a list": lambda rng, at: _entry(rng, at, inputs="none"),
    "out is an object": lambda rng, at: _entry(rng, at, out={"n": 1}),
    "an input is a number": lambda rng, at: _entry(rng, at, inputs=[{"prev_out": {"addr": "bc1qa", "value": 5}}, 7]),
    "an input's prev_out is a list": lambda rng, at: _entry(rng, at, inputs=[{"prev_out": [1, 2]}]),
    "an input's address is a number": lambda rng, at: _entry(rng, at, inputs=[{"prev_out": {"addr": 12345, "value": 5}}]),
    "an output is null": lambda rng, at: _entry(rng, at, out=[{"addr": "bc1qa", "value": 5}, None]),
    "an output's value is text": lambda rng, at: _entry(rng, at, out=[{"addr": "bc1qa", "value": "lots"}]),
    "an output's value beyond 64 bits": lambda rng, at: _entry(rng, at, out=[{"addr": "bc1qa", "value": 2**64}]),
}

# Recording lines that are not a poll, by kind: (rng, the previous poll's time) -> the line's bytes.
LINE_KINDS: dict[str, Callable[[random.Random, float], bytes]] = {
    "line is not JSON": lambda rng, at: b"this is not json {",
    "line is invalid UTF-8": lambda rng, at: b'{"polled_at": \xff\xfe, "txs": []}',
    "line has NUL bytes": lambda rng, at: b"\x00\x00\x00",
    "line is a JSON list": lambda rng, at: b"[1, 2, 3]",
    "line without txs": lambda rng, at: json.dumps({"polled_at": at}).encode(),
    "txs is not a list": lambda rng, at: json.dumps({"polled_at": at, "txs": "none"}).encode(),
    "line nested 100,000 deep": lambda rng, at: b"[" * 100_000 + b"]" * 100_000,
    "line of 5 MB": lambda rng, at: b"x" * (5 * 1024 * 1024),
}
# Kinds too big to repeat often: at most this many of each.
RARE = {"line nested 100,000 deep": 3, "line of 5 MB": 3}


def fuzzed_recording(clean: Path, output: Path, count: int, rng: random.Random) -> Counter:
    """``clean`` with ``count`` malformed pieces mixed in (every kind at least once when count allows),
    written to ``output``; returns how many of each kind went in."""
    polls = list(read_recording(clean))
    kinds = list(ENTRY_KINDS) + list(LINE_KINDS)
    chosen: list[str] = []
    while len(chosen) < count:
        for kind in kinds:
            if len(chosen) < count and chosen.count(kind) < RARE.get(kind, count):
                chosen.append(kind)
    injected: Counter = Counter(chosen)
    entries: list[list[Any]] = [[] for _ in polls]
    lines_after: list[list[bytes]] = [[] for _ in polls]
    for kind in chosen:
        index = rng.randrange(len(polls))
        at = polls[index].polled_at
        if kind in ENTRY_KINDS:
            entries[index].append(ENTRY_KINDS[kind](rng, at))
        else:
            lines_after[index].append(LINE_KINDS[kind](rng, at))
    with open(output, "wb") as out:
        for poll, extra, lines in zip(polls, entries, lines_after):
            txs = list(poll.txs)
            for entry in extra:
                txs.insert(rng.randrange(len(txs) + 1), entry)
            out.write(json.dumps({"polled_at": poll.polled_at, "txs": txs}).encode() + b"\n")
            for line in lines:
                out.write(line + b"\n")
    return injected
