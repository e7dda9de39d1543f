"""Throughput of the real job on a bounded replay, against DuckDB doing the same aggregation, in one run.

    .venv/bin/python bench/throughput.py [--transactions 1000000] [--duplicates 0.10] [--keep DIR]

Input: one feed file of polls (new transactions newest first, plus re-polled ones: --duplicates of all
lines), as the spool publisher writes it. The job: build_pipeline() exactly as `chainfeat run` builds it
(source → parse/validate → dedup → lateness → 1-min windows → feature-store writer into the local
server), bounded. The baseline: DuckDB over the same file (first-seen dedup by hash, then per-minute
count/sum/avg). Prints records/s for both, their ratio, the job's start-up time and the JVM's peak RSS,
and checks that both computed the same features.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb  # noqa: E402

from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig  # noqa: E402
from connectors.featurestore.local_server import LocalFeatureStoreServer  # noqa: E402
from connectors.featurestore.offline_query import run_query  # noqa: E402

T0 = 1714521600
POLL_INTERVAL_S = 15
RATE_PER_S = 5.0


def write_feed(path: Path, transactions: int, duplicate_share: float, seed: int = 1) -> tuple[int, int]:
    """Polls of new transactions (newest first) plus re-polls of recent ones; returns (lines, unique)."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = unique = 0
    previous: list[str] = []
    polled_at = float(T0)
    with open(path, "w") as out:
        while unique < transactions:
            polled_at += POLL_INTERVAL_S
            count = min(transactions - unique, max(1, int(rng.gauss(RATE_PER_S * POLL_INTERVAL_S, 8))))
            page = []
            for offset in sorted((rng.uniform(0, POLL_INTERVAL_S) for _ in range(count)), reverse=True):
                unique += 1
                page.append(json.dumps({
                    "hash": f"{unique:064x}", "time": int(polled_at - offset), "fee": int(rng.lognormvariate(8, 0.8)),
                    "size": rng.randint(150, 900), "polled_at": polled_at,
                }, separators=(",", ":")))
            repolled = rng.sample(previous, k=min(len(previous), round(len(page) * duplicate_share / (1 - duplicate_share))))
            for line in page + repolled:
                out.write(line + "\n")
            out.write(json.dumps({"heartbeat": True, "time": int(polled_at), "polled_at": polled_at}) + "\n")
            lines += len(page) + len(repolled)
            previous = page
    return lines, unique


def peak_rss_of_java_children() -> int:
    """Peak resident set (bytes) of this process's java children (the PyFlink gateway JVM)."""
    peak = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if "\nName:\tjava\n" not in "\n" + text or f"\nPPid:\t{os.getpid()}\n" not in text:
            continue
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) * 1024)
    return peak


def run_job(work: Path, server_url: str) -> dict[str, float]:
    from job.config import JobConfig, load_property_groups
    from job.pipeline import build_pipeline

    started = time.perf_counter()
    config = JobConfig.from_properties(load_property_groups(), work, featurestore_endpoint_url=server_url,
                                       monitor_interval_s=None)
    pipeline = build_pipeline(config)
    client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=server_url))
    for definition in pipeline.feature_groups:
        client.ensure_feature_group(definition)
    built = time.perf_counter()
    job = pipeline.execute_async("bench")
    rss = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            rss[0] = max(rss[0], peak_rss_of_java_children())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    job.get_job_execution_result().result()
    finished = time.perf_counter()
    done.set()
    sampler.join()
    return {"setup_s": built - started, "run_s": finished - built, "jvm_peak_rss": max(rss[0], peak_rss_of_java_children())}


def run_duckdb(feed: Path) -> tuple[float, dict[str, tuple[int, int]]]:
    started = time.perf_counter()
    connection = duckdb.connect()
    rows = connection.execute(
        f"""
        WITH lines AS (
            SELECT hash, time, fee, row_number() OVER () AS position
            FROM read_json('{feed}', format = 'newline_delimited',
                           columns = {{'hash': 'VARCHAR', 'time': 'BIGINT', 'fee': 'BIGINT'}})
            WHERE hash IS NOT NULL
        ), first_seen AS (
            SELECT time, fee FROM lines QUALIFY row_number() OVER (PARTITION BY hash ORDER BY position) = 1
        )
        SELECT strftime(to_timestamp(time // 60 * 60), '%Y-%m-%d %H:%M:%S') AS tx_minute,
               count(*), sum(fee), avg(fee)
        FROM first_seen GROUP BY 1
        """
    ).fetchall()
    elapsed = time.perf_counter() - started
    return elapsed, {minute: (count, total) for minute, count, total, _avg in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=1_000_000, help="unique transactions")
    parser.add_argument("--duplicates", type=float, default=0.10, help="share of lines that are re-polls")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="chainfeat-bench-"))
    shutil.rmtree(work, ignore_errors=True)
    os.environ.setdefault("FLINK_LOG_DIR", str(work / "logs"))
    feed = work / "feed" / "feed-000000001.jsonl"
    started = time.perf_counter()
    lines, unique = write_feed(feed, args.transactions, args.duplicates)
    print(f"input: {lines:,} transaction lines ({unique:,} unique, {lines - unique:,} re-polled), "
          f"{feed.stat().st_size / 1e6:.0f} MB, written in {time.perf_counter() - started:.1f}s")

    duckdb_s, reference = run_duckdb(feed)
    with LocalFeatureStoreServer(work, port=0, flush_interval_s=5).start() as server:
        job = run_job(work, server.url)
    columns, rows = run_query(work, "SELECT tx_minute, total_nb_trx_1min, total_fee_1min FROM tx_minute_features")
    features = {minute: (count, total) for minute, count, total in rows}

    job_rate, duckdb_rate = lines / job["run_s"], lines / duckdb_s
    print(f"flink job : {job_rate:>12,.0f} tx/s  ({job['run_s']:.1f}s run + {job['setup_s']:.1f}s JVM/plan set-up, "
          f"JVM peak RSS {job['jvm_peak_rss'] / 2**20:,.0f} MiB)")
    print(f"duckdb    : {duckdb_rate:>12,.0f} tx/s  ({duckdb_s:.1f}s)")
    print(f"ratio     : job = {job_rate / duckdb_rate:.2f} x duckdb")
    print(f"windows   : {len(features):,} written by the job, {len(reference):,} by duckdb; "
          f"identical: {features == reference}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if features == reference else 1)


if __name__ == "__main__":
    main()
