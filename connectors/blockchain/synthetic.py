"""Synthetic recordings of the unconfirmed-transactions API, for demos, tests and benchmarks.

No real capture can be made on machines without internet, so recordings are simulated from realistic
distributions: Poisson arrivals at a rate that drifts between ~2.5 and ~5.5 tx/s with occasional bursts
(bursts of 11 tx/s outrun a 100-tx page polled every 15 s: those polls show gaps, as the live API
does); fee rates log-normal around ~12 sat/vB; sizes from the number of inputs and outputs. A poll at
time P returns the 100 most recent transactions with time <= P, newest first, with the API's fields.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.blockchain.source import Poll

PAGE_SIZE = 100


@dataclass(frozen=True)
class SyntheticProfile:
    start: float = 1714521600.0  # 2024-05-01 00:00:00 UTC
    duration_s: float = 3900.0  # 65 minutes of polls
    poll_interval_s: float = 15.0
    base_rate: float = 4.0  # tx/s
    rate_swing: float = 1.5  # slow drift of +-1.5 tx/s
    burst_every_s: float = 1200.0
    burst_length_s: float = 45.0
    burst_rate: float = 11.0
    seed: int = 7


def _address(rng: random.Random) -> str:
    return "bc1q" + "".join(rng.choice("023456789acdefghjklmnpqrstuvwxyz") for _ in range(38))


def transaction(rng: random.Random, index: int, tx_time: int) -> dict[str, Any]:
    vin_sz = min(1 + int(rng.expovariate(1.2)), 20)
    vout_sz = min(1 + int(rng.expovariate(0.9)), 20)
    vsize = 11 + 68 * vin_sz + 31 * vout_sz + rng.randint(0, 20)
    weight = vsize * 4 - rng.randint(0, 3)
    size = int(vsize + 0.25 * (weight - vsize * 3) + 40 * vin_sz * rng.random())
    fee_rate = math.exp(rng.gauss(math.log(12.0), 0.8))  # sat/vB
    fee = max(int(fee_rate * vsize), vsize)  # at least 1 sat/vB, the relay floor
    values = [rng.randint(546, 50_000_000) for _ in range(vin_sz)]
    total_in = sum(values)
    outputs_total = total_in - fee
    out_values = _split(rng, outputs_total, vout_sz)
    tx_hash = hashlib.sha256(f"chainfeat-synthetic-{index}".encode()).hexdigest()
    tx: dict[str, Any] = {
        "hash": tx_hash,
        "ver": rng.choice((1, 2, 2, 2)),
        "vin_sz": vin_sz,
        "vout_sz": vout_sz,
        "size": size,
        "weight": weight,
        "fee": fee,
        "relayed_by": "0.0.0.0",
        "lock_time": 0 if rng.random() < 0.8 else rng.randint(840000, 845000),
        "tx_index": rng.randint(10**15, 9 * 10**15),
        "double_spend": False,
        "time": tx_time,
        "block_index": None,
        "block_height": None,
        "inputs": [
            {
                "sequence": 4294967293 if rng.random() < 0.3 else 4294967295,
                "witness": "",
                "script": "",
                "index": n,
                "prev_out": {"addr": _address(rng), "n": rng.randint(0, 3), "spent": True,
                             "tx_index": rng.randint(10**15, 9 * 10**15), "type": 0, "value": value},
            }
            for n, value in enumerate(values)
        ],
        "out": [
            {"type": 0, "spent": False, "value": value, "n": n, "tx_index": 0, "addr": _address(rng)}
            for n, value in enumerate(out_values)
        ],
    }
    if rng.random() < 0.3:
        tx["rbf"] = True
    return tx


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    cuts = sorted(rng.randint(0, max(total, 0)) for _ in range(parts - 1))
    edges = [0, *cuts, max(total, 0)]
    return [b - a for a, b in zip(edges, edges[1:])]


def arrival_rate(profile: SyntheticProfile, t: float) -> float:
    elapsed = t - profile.start
    rate = profile.base_rate + profile.rate_swing * math.sin(2 * math.pi * elapsed / 1800.0)
    if elapsed % profile.burst_every_s > profile.burst_every_s - profile.burst_length_s:
        rate = profile.burst_rate
    return rate


def arrivals(profile: SyntheticProfile, rng: random.Random) -> Iterator[float]:
    """Arrival times of a Poisson process whose rate follows arrival_rate (thinning)."""
    peak = max(profile.burst_rate, profile.base_rate + profile.rate_swing)
    t = profile.start - 120  # a couple of minutes of history so the first page is full
    end = profile.start + profile.duration_s
    while True:
        t += rng.expovariate(peak)
        if t > end:
            return
        if rng.random() < arrival_rate(profile, t) / peak:
            yield t


def polls(profile: SyntheticProfile = SyntheticProfile()) -> Iterator[Poll]:
    rng = random.Random(profile.seed)
    times = list(arrivals(profile, rng))
    txs = [transaction(rng, index, int(t)) for index, t in enumerate(times)]
    next_tx = 0
    for number in range(int(profile.duration_s // profile.poll_interval_s) + 1):
        polled_at = profile.start + number * profile.poll_interval_s + rng.uniform(0.05, 0.6)
        while next_tx < len(txs) and times[next_tx] <= polled_at:
            next_tx += 1
        page = txs[max(0, next_tx - PAGE_SIZE) : next_tx]
        yield Poll(polled_at=round(polled_at, 3), txs=list(reversed(page)))


def write_recording(path: Path, profile: SyntheticProfile = SyntheticProfile()) -> int:
    """Write a recording (gzip when the name ends in .gz); returns the number of polls."""
    count = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = gzip.GzipFile(path, "wb", mtime=0) if str(path).endswith(".gz") else open(path, "wb")
    with io.TextIOWrapper(raw, encoding="utf-8") as out:  # mtime=0: the same profile gives the same bytes
        for poll in polls(profile):
            out.write(poll.to_json() + "\n")
            count += 1
    return count
