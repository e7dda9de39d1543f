"""How fast the poller turns pages into stream lines (connectors/blockchain/transactions.py), on one core.

    .venv/bin/python bench/poller_lines.py [--transactions 20000] [--rounds 5]

The workload is bench/workload.py's (N unique transactions polled as the API pages them, every field with inputs and
outputs). Each round splits every poll twice, as the two ways in do: a recording line (``split_recorded_poll``, what
a replay runs) and a live page (``split_poll``, what a poll of the API runs); the best round counts. It prints
transactions per second of each and the bytes of stream lines per transaction; it checks that the tolerant path
(a page with one entry that is not a transaction) writes the same lines as the fast one, and exits 1 if not.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgspec  # noqa: E402

from bench.workload import CACHE, workload  # noqa: E402
from connectors.blockchain.transactions import split_poll, split_recorded_poll  # noqa: E402


def best_rate(split, inputs: list, transactions: int, rounds: int) -> tuple[float, int]:
    """The best of ``rounds`` rounds of ``split`` over every input: transactions per second, and bytes written."""
    best = float("inf")
    written = 0
    for _ in range(rounds):
        started = time.perf_counter()
        written = sum(len(split(*item).text) for item in inputs)
        best = min(best, time.perf_counter() - started)
    return transactions / best, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=20_000, help="unique transactions of the workload")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (the best counts)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where workloads are kept")
    args = parser.parse_args()

    data = workload(args.transactions, cache=args.cache, flattened=False)
    lines = data.recording.read_bytes().splitlines()
    decode, encode = msgspec.json.Decoder().decode, msgspec.json.Encoder().encode
    polls = [decode(line) for line in lines]
    pages = [(encode({"txs": poll["txs"]}), poll["polled_at"]) for poll in polls]
    sightings = sum(len(poll["txs"]) for poll in polls)

    replay, written = best_rate(lambda line: split_recorded_poll(line), [(line,) for line in lines], sightings, args.rounds)
    live, _ = best_rate(split_poll, pages, sightings, args.rounds)
    print(f"workload: {sightings:,} sightings in {len(lines):,} polls, {data.recording.stat().st_size / sightings:.0f} "
          "bytes of recording per sighting")
    print(f"recording line -> stream lines (replay): {replay:10,.0f} tx/s")
    print(f"API page -> stream lines (live poll):    {live:10,.0f} tx/s")
    print(f"stream lines: {written / sightings:.0f} bytes per transaction (heartbeats included)")

    page, polled_at = pages[0]
    tolerant = split_poll(page[:-2] + b',"not a transaction"]}', polled_at).lines
    if tolerant[:-2] != split_poll(page, polled_at).lines[:-1]:
        print("the tolerant path writes other lines than the fast one")
        sys.exit(1)


if __name__ == "__main__":
    main()
