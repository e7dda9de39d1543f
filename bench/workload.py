"""The benchmarks' data: a recording of N unique transactions, polled as the API pages them, and the same
sightings flattened to one JSON line per transaction (what peers read). Generated once per (N, duplicate
share, seed, shape) into a cache directory and reused.

Each poll brings the transactions that arrived since the previous one (newest first) plus re-polls of the previous
poll's transactions, so that ``duplicates`` of all sightings are re-polls; transactions are
connectors/blockchain/synthetic.py's (every API field, inputs and outputs). The shape says how often and how many:
realistic, the API's (a poll every 15 s, ~75 new transactions: ~5 tx/s, 3,355 one-minute windows per 1 M); dense, a
poll every second with ~100 new ones (~167 windows per 1 M), where engines whose cost grows with the windows gain.
"""

from __future__ import annotations

import argparse
import os
import random
from dataclasses import dataclass
from pathlib import Path

import msgspec

from connectors.blockchain.synthetic import transaction

T0 = 1714521600
CACHE = Path(os.environ.get("CHAINFEAT_BENCH_CACHE", Path.home() / ".cache" / "chainfeat" / "bench"))


@dataclass(frozen=True)
class Shape:
    """How the API pages the transactions: a poll every ``poll_interval_s`` with ~``new_per_poll`` new ones."""

    name: str
    poll_interval_s: float
    new_per_poll: float


SHAPES = {shape.name: shape for shape in (Shape("realistic", 15, 75), Shape("dense", 1, 100))}
REALISTIC = SHAPES["realistic"]


@dataclass(frozen=True)
class Workload:
    recording: Path  # one poll per line: {"polled_at": ..., "txs": [...]}
    flattened: Path | None  # one sighting per line: the transaction plus polled_at (for peers)
    transactions: int  # unique
    sightings: int
    polls: int

    @property
    def bytes_per_poll(self) -> float:
        return self.recording.stat().st_size / self.polls


def workload(transactions: int, duplicates: float = 0.10, seed: int = 1, cache: Path = CACHE,
             flattened: bool = True, shape: Shape = REALISTIC) -> Workload:
    """The cached workload, generated first if needed (atomically: a partial file is never reused);
    ``flattened=False`` when no peer runs (it saves the second copy)."""
    name = f"tx{transactions}-dup{duplicates:g}-seed{seed}" + ("" if shape == REALISTIC else f"-{shape.name}")
    recording, flat, counts = (cache / f"{name}.recording.jsonl", cache / f"{name}.flat.jsonl",
                               cache / f"{name}.counts.json")
    if not counts.exists():
        cache.mkdir(parents=True, exist_ok=True)
        sightings, polls = _generate(transactions, duplicates, seed, shape, recording, flat if flattened else None)
        counts.write_bytes(msgspec.json.encode({"sightings": sightings, "polls": polls}))
    elif flattened and not flat.exists():
        _flatten(recording, flat)
    numbers = msgspec.json.decode(counts.read_bytes())
    return Workload(recording, flat if flat.exists() else None, transactions, numbers["sightings"], numbers["polls"])


def _generate(transactions: int, duplicates: float, seed: int, shape: Shape, recording: Path,
              flattened: Path | None) -> tuple[int, int]:
    rng = random.Random(seed)
    encode = msgspec.json.Encoder().encode
    polled_at = float(T0)
    unique = sightings = polls = 0
    previous: list[dict] = []
    partial_recording = recording.with_suffix(".partial")
    partial_flattened = flattened.with_suffix(".partial") if flattened else Path(os.devnull)
    with open(partial_recording, "wb") as rec, open(partial_flattened, "wb") as flat:
        while unique < transactions:
            polled_at += shape.poll_interval_s
            count = min(transactions - unique, max(1, int(rng.gauss(shape.new_per_poll, 8))))
            page = []
            for offset in sorted((rng.uniform(0, shape.poll_interval_s) for _ in range(count)), reverse=True):
                unique += 1
                page.append(transaction(rng, unique, int(polled_at - offset)))
            repolled = rng.sample(previous, k=min(len(previous), round(len(page) * duplicates / (1 - duplicates))))
            txs = page + repolled
            rec.write(encode({"polled_at": polled_at, "txs": txs}) + b"\n")
            if flattened:
                flat.write(b"".join(encode({**tx, "polled_at": polled_at}) + b"\n" for tx in txs))
            sightings += len(txs)
            polls += 1
            previous = page
    os.replace(partial_recording, recording)
    if flattened:
        os.replace(partial_flattened, flattened)
    return sightings, polls


def _flatten(recording: Path, flattened: Path) -> None:
    """The flattened copy of a cached recording generated without one (the same lines _generate writes)."""
    encode, decode = msgspec.json.Encoder().encode, msgspec.json.Decoder().decode
    partial = flattened.with_suffix(".partial")
    with open(recording, "rb") as rec, open(partial, "wb") as flat:
        for line in rec:
            poll = decode(line)
            flat.write(b"".join(encode({**tx, "polled_at": poll["polled_at"]}) + b"\n" for tx in poll["txs"]))
    os.replace(partial, flattened)


def bench_arguments(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, list[str]]:
    """The options every benchmark takes (the workload, the peers, where to work), parsed; and the peers named."""
    parser.add_argument("--transactions", type=int, default=1_000_000, help="unique transactions")
    parser.add_argument("--duplicates", type=float, default=0.10, help="share of sightings that are re-polls")
    parser.add_argument("--shape", choices=sorted(SHAPES), default=REALISTIC.name,
                        help="realistic: a poll every 15 s with ~75 new transactions (3,355 one-minute windows per "
                             "1 M); dense: a poll every second with ~100 (~167 windows per 1 M)")
    parser.add_argument("--peers", default="duckdb,pathway", help="comma-separated: duckdb, pathway (or none)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where workloads are kept")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = parser.parse_args()
    return args, [peer for peer in args.peers.split(",") if peer and peer != "none"]


def verdict(equal_to_peers: dict[str, bool]) -> int:
    """The benchmark's exit code from each peer's comparison with chainfeat: 0 every peer agreed, 1 one did not,
    2 no peer's windows were compared (--peers none), so nothing checked chainfeat's result."""
    if not equal_to_peers:
        print("windows not compared: no peer ran (--peers none), so this run checked nothing; exit 2")
        return 2
    return 0 if all(equal_to_peers.values()) else 1

