"""The feature-store write path alone: rows per second and CPU-seconds per side, no Flink.

What the job's writer does with a bundle of feature rows, without the job: FeatureStoreClient.write_records of the
rows as the writer converts them (udfs/feature_store_writer.api_records: pandas columns to Records), BatchWriteRecord
calls of 25 entries with ``--concurrency`` in flight, to the local store served by a process of its own as `chainfeat
run` starts it. The group is bench/writes.py's per-entity one (4,096 entities, 5-minute windows every minute). It
prints the rows per second (wall) and the CPU-seconds of each side (this process, the client; the store's process,
its offline flush of the rows included), user and system, per run; runs alternate with ``--baseline`` (another checkout's code, in a process of its own) when
given. Every run must leave exactly its rows in the store (online: the newest per entity; offline: all of them, once).

    .venv/bin/python bench/write_path.py                        # 70,000 rows, 3 runs
    .venv/bin/python bench/write_path.py --baseline /tmp/main   # alternating with the code checked out in /tmp/main
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_TICK_S = 1 / os.sysconf("SC_CLK_TCK")
GROUP = "prefix_5min"


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU-seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return int(fields[11]) * _TICK_S, int(fields[12]) * _TICK_S


def measure(rows: int, bundle: int, concurrency: int) -> dict:
    """One run in this process, with the code imported from the current directory's checkout."""
    import numpy as np
    import pandas as pd

    from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig
    from connectors.featurestore.local.offline import run_query
    from connectors.featurestore.local.process import StoreProcess
    from connectors.featurestore.model import FeatureGroupDefinition, FeatureType
    from udfs import feature_store_writer

    definition = FeatureGroupDefinition(GROUP, "hash_prefix", "event_time", {
        "hash_prefix": FeatureType.STRING, "event_time": FeatureType.FRACTIONAL,
        "nb_trx_5min": FeatureType.INTEGRAL, "total_fee_5min": FeatureType.INTEGRAL})
    names = list(definition.features)
    index = np.arange(rows)
    columns = [pd.Series([f"{i % 4096:03x}" for i in index]), pd.Series(1714521600.0 + 60 * (index // 4096)),
               pd.Series(index % 50), pd.Series(index * 7)]
    if hasattr(feature_store_writer, "api_records"):
        def write(client: FeatureStoreClient, start: int) -> None:
            part = [column.iloc[start:start + bundle] for column in columns]
            client.write_records(GROUP, feature_store_writer.api_records(names, part))
    else:  # code from before api_records: the rows as the writer made them then
        def write(client: FeatureStoreClient, start: int) -> None:
            part = [column.iloc[start:start + bundle] for column in columns]
            plain = feature_store_writer.plain
            client.put_records(GROUP, [dict(zip(names, map(plain, values))) for values in zip(*part)])

    with tempfile.TemporaryDirectory() as work:
        store = StoreProcess(Path(work) / "featurestore")
        try:
            client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=store.url, concurrency=concurrency))
            client.ensure_feature_group(definition)
            client.put_records(GROUP, [{"hash_prefix": "warm", "event_time": 1.0, "nb_trx_5min": 0, "total_fee_5min": 0}])
            before_client, before_store = cpu_seconds(os.getpid()), cpu_seconds(store.pid)
            started = time.perf_counter()
            for start in range(0, rows, bundle):
                write(client, start)
            seconds = time.perf_counter() - started
            store.flush_offline()  # the store's CPU includes moving every row to Parquet
            after_client, after_store = cpu_seconds(os.getpid()), cpu_seconds(store.pid)
            online = store.online_count(GROUP)
        finally:
            store.stop()
        _columns, offline = run_query(Path(work) / "featurestore", f"SELECT COUNT(*) FROM {GROUP}")
    if online != min(rows, 4096) + 1 or offline[0][0] != rows + 1:
        raise SystemExit(f"the store holds {online} records online and {offline[0][0]} rows offline after {rows} rows")
    return {"rows": rows, "seconds": seconds, "load": os.getloadavg()[0],
            "client": [after_client[0] - before_client[0], after_client[1] - before_client[1]],
            "store": [after_store[0] - before_store[0], after_store[1] - before_store[1]]}


def run_checkout(checkout: Path, args: argparse.Namespace) -> dict:
    """measure() in a process of its own, importing the code of ``checkout``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--one", "--rows", str(args.rows), "--bundle",
               str(args.bundle), "--concurrency", str(args.concurrency)]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the run over {checkout} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def line(name: str, result: dict) -> str:
    client, store, rows = sum(result["client"]), sum(result["store"]), result["rows"]
    return (f"{name}: {rows / result['seconds']:,.0f} rows/s ({result['seconds']:.1f} s); client {client:.2f} CPU-s "
            f"(user {result['client'][0]:.2f}, sys {result['client'][1]:.2f}), {client / rows * 1e6:.0f} us/row; "
            f"store {store:.2f} CPU-s (user {result['store'][0]:.2f}, sys {result['store'][1]:.2f}), "
            f"{store / rows * 1e6:.0f} us/row; load average {result['load']:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=70_000)
    parser.add_argument("--bundle", type=int, default=1_000, help="rows per writer call (an Arrow batch's rows)")
    parser.add_argument("--concurrency", type=int, default=4, help="BatchWriteRecord calls in flight")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout to alternate with (its code, this script)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        sys.path.insert(0, os.getcwd())
        print(json.dumps(measure(args.rows, args.bundle, args.concurrency)))
        return
    checkouts = {"this": REPO, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    results: dict[str, list[dict]] = {name: [] for name in checkouts}
    for run in range(args.runs):
        for name, checkout in checkouts.items():
            results[name].append(run_checkout(checkout, args))
            print(f"run {run + 1}, " + line(name, results[name][-1]), flush=True)
    for name, runs in results.items():
        rows = runs[0]["rows"]
        client = statistics.median(sum(r["client"]) for r in runs) / rows * 1e6
        store = statistics.median(sum(r["store"]) for r in runs) / rows * 1e6
        rate = statistics.median(r["rows"] / r["seconds"] for r in runs)
        print(f"{name} (median of {len(runs)}): {rate:,.0f} rows/s; client {client:.0f} us/row, store {store:.0f} us/row")


if __name__ == "__main__":
    main()
