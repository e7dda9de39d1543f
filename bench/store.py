"""Serving figures of the local feature store, through boto3 as users' code calls it: PutRecord and BatchWriteRecord
records per second, GetRecord and BatchGetRecord latency (p50 / p99) at 1 and 32 concurrent clients, with the record
count and sizes, printed beside what AWS publishes about its online store.

The store runs as `chainfeat run` runs it (a child process, connectors/featurestore/local/process.py); the clients are
threads of this process, each with its own boto3 client, on the same cores. Every figure is checked: the writes must
leave exactly the records written online, and every read must find its record with the values written last (exit 1
otherwise).

    .venv/bin/python bench/store.py                        # 10,000 records, 1 and 32 clients
    .venv/bin/python bench/store.py --records 50000 --clients 1,8,32
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from connectors.featurestore.local.process import StoreProcess  # noqa: E402
from connectors.featurestore.local.wire import MAX_BATCH_WRITE_ENTRIES  # noqa: E402
from connectors.featurestore.model import MAX_RECORD_BYTES  # noqa: E402

GROUP = "bench_minute_features"
# The shipped group's shape (sql/features/tx_minute_features.sql): one record per minute.
DEFINITIONS = [
    {"FeatureName": "tx_minute", "FeatureType": "String"},
    {"FeatureName": "event_time", "FeatureType": "Fractional"},
    {"FeatureName": "total_nb_trx_1min", "FeatureType": "Integral"},
    {"FeatureName": "total_fee_1min", "FeatureType": "Integral"},
    {"FeatureName": "avg_fee_1min", "FeatureType": "Fractional"},
]
BATCH_GET_IDENTIFIERS = 100  # record identifiers per BatchGetRecord (the most one group takes)
# What AWS publishes about its online store, for context: no latency figure, the words and the throughput quotas.
AWS_PUBLISHED = [
    ("online store, Standard tier", "\"low-latency\" (no figure published)",
     "https://docs.aws.amazon.com/sagemaker/latest/dg/feature-store-storage-configurations-online-store.html"),
    ("online store, InMemory tier (ElastiCache)", "\"very low-latency\" (no figure published)",
     "https://docs.aws.amazon.com/sagemaker/latest/dg/feature-store-storage-configurations-online-store.html"),
    ("requests per second per API per account", "10,000 (soft quota); BatchGetRecord 500",
     "https://docs.aws.amazon.com/sagemaker/latest/dg/feature-store-quotas.html"),
]


def record(index: int, version: int) -> list[dict[str, str]]:
    """Record ``index``'s values as written the ``version``-th time (a later version has a later event time)."""
    minute = time.strftime("%Y-%m-%d %H:%M:00", time.gmtime(1_700_000_000 + 60 * index))
    count = 100 + index % 97 + version
    return [
        {"FeatureName": "tx_minute", "ValueAsString": minute},
        {"FeatureName": "event_time", "ValueAsString": str(1_700_000_060.0 + 60 * index + version)},
        {"FeatureName": "total_nb_trx_1min", "ValueAsString": str(count)},
        {"FeatureName": "total_fee_1min", "ValueAsString": str(count * 1234)},
        {"FeatureName": "avg_fee_1min", "ValueAsString": str(1234.0)},
    ]


def record_id(index: int) -> str:
    return record(index, 0)[0]["ValueAsString"]


def client(url: str, service: str = "sagemaker-featurestore-runtime"):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench",
                        aws_secret_access_key="bench", config=Config(retries={"mode": "standard", "max_attempts": 1}))


def run_clients(url: str, clients: int, work: Callable[[object, int], list[float]]) -> tuple[float, list[float]]:
    """Run ``work(runtime client, client number)`` on ``clients`` threads at once; (wall seconds, every latency)."""
    runtimes = [client(url) for _ in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    start = threading.Barrier(clients + 1)

    def run(number: int) -> None:
        # A first call opens the client's connection: what is timed is serving, not connecting.
        runtimes[number].get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="warm-up")
        start.wait()
        try:
            latencies[number] = work(runtimes[number], number)
        except BaseException as error:  # reported after the others finish
            errors.append(error)

    threads = [threading.Thread(target=run, args=(number,)) for number in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise SystemExit(f"a client failed: {errors[0]!r}")
    return elapsed, [latency for per_client in latencies for latency in per_client]


def timed(call: Callable[[], object]) -> tuple[float, object]:
    began = time.perf_counter()
    answer = call()
    return time.perf_counter() - began, answer


def share(items: range, clients: int, number: int) -> range:
    return items[number::clients]


def put_records(url: str, records: int, clients: int, version: int) -> float:
    def work(runtime, number: int) -> list[float]:
        for index in share(range(records), clients, number):
            runtime.put_record(FeatureGroupName=GROUP, Record=record(index, version))
        return []

    elapsed, _ = run_clients(url, clients, work)
    return records / elapsed


def batch_write_records(url: str, records: int, clients: int, version: int) -> float:
    batches = [range(start, min(start + MAX_BATCH_WRITE_ENTRIES, records))
               for start in range(0, records, MAX_BATCH_WRITE_ENTRIES)]

    def work(runtime, number: int) -> list[float]:
        for batch in batches[number::clients]:
            answer = runtime.batch_write_record(Entries=[{"FeatureGroupName": GROUP, "Record": record(index, version)}
                                                         for index in batch])
            if answer["Errors"] or answer["UnprocessedEntries"]:
                raise SystemExit(f"BatchWriteRecord left entries out: {answer['Errors'][:1]}")
        return []

    elapsed, _ = run_clients(url, clients, work)
    return records / elapsed


def get_records(url: str, records: int, clients: int, calls: int, version: int, seed: int) -> list[float]:
    def work(runtime, number: int) -> list[float]:
        rng, latencies = random.Random(seed + number), []
        for _ in range(calls // clients):
            index = rng.randrange(records)
            latency, answer = timed(lambda: runtime.get_record(FeatureGroupName=GROUP,
                                                               RecordIdentifierValueAsString=record_id(index)))
            if answer.get("Record") != record(index, version):
                raise SystemExit(f"GetRecord of {record_id(index)} gave {answer.get('Record')}")
            latencies.append(latency)
        return latencies

    return run_clients(url, clients, work)[1]


def batch_get_records(url: str, records: int, clients: int, calls: int, version: int, seed: int) -> list[float]:
    def work(runtime, number: int) -> list[float]:
        rng, latencies = random.Random(seed + number), []
        for _ in range(max(1, calls // clients)):
            indexes = rng.sample(range(records), BATCH_GET_IDENTIFIERS)
            latency, answer = timed(lambda: runtime.batch_get_record(Identifiers=[{
                "FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": [record_id(i) for i in indexes]}]))
            found = {item["RecordIdentifierValueAsString"]: item["Record"] for item in answer["Records"]}
            if found != {record_id(i): record(i, version) for i in indexes}:
                raise SystemExit(f"BatchGetRecord found {len(found)} of {len(indexes)} records, or other values")
            latencies.append(latency)
        return latencies

    return run_clients(url, clients, work)[1]


def percentiles(latencies: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000, help="records in the group (each write phase writes all)")
    parser.add_argument("--clients", default="1,32", help="comma-separated numbers of concurrent clients")
    parser.add_argument("--reads", type=int, default=3_200, help="GetRecord calls per client count")
    parser.add_argument("--batch-reads", type=int, default=320, help="BatchGetRecord calls (100 records each) per client count")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    client_counts = [int(count) for count in args.clients.split(",")]
    sample = record(args.records - 1, 0)
    record_bytes = sum(len(value["FeatureName"].encode()) + len(value["ValueAsString"].encode()) for value in sample)
    put_body_bytes = len(json.dumps({"Record": sample}).encode())

    with tempfile.TemporaryDirectory(prefix="chainfeat-store-bench-") as work:
        store = StoreProcess(Path(work) / "featurestore")
        try:
            url = store.url
            client(url, "sagemaker").create_feature_group(
                FeatureGroupName=GROUP, RecordIdentifierFeatureName="tx_minute", EventTimeFeatureName="event_time",
                FeatureDefinitions=DEFINITIONS, OnlineStoreConfig={"EnableOnlineStore": True})
            print(f"local feature store {url}: {args.records:,} records of {len(DEFINITIONS)} features, "
                  f"{record_bytes} bytes each as Feature Store counts a record (limit {MAX_RECORD_BYTES:,}), "
                  f"PutRecord body {put_body_bytes} bytes; "
                  f"boto3 clients as threads of one process, each with its own connection", flush=True)
            rows: list[tuple[str, str, str]] = []
            version = 0
            for clients in client_counts:
                version += 1
                rate = put_records(url, args.records, clients, version)
                rows.append((f"PutRecord, {clients} client(s)", f"{rate:,.0f} records/s", ""))
                version += 1
                rate = batch_write_records(url, args.records, clients, version)
                rows.append((f"BatchWriteRecord of {MAX_BATCH_WRITE_ENTRIES}, {clients} client(s)",
                             f"{rate:,.0f} records/s", f"{rate / MAX_BATCH_WRITE_ENTRIES:,.0f} calls/s"))
                print(f"  writes at {clients} client(s) done", flush=True)
            if store.online_count(GROUP) != args.records:
                raise SystemExit(f"{store.online_count(GROUP):,} records online, {args.records:,} written")
            for clients in client_counts:
                p50, p99 = percentiles(get_records(url, args.records, clients, args.reads, version, args.seed))
                rows.append((f"GetRecord, {clients} client(s)", f"p50 {p50:.2f} ms", f"p99 {p99:.2f} ms"))
                p50, p99 = percentiles(batch_get_records(url, args.records, clients, args.batch_reads, version,
                                                         args.seed))
                rows.append((f"BatchGetRecord of {BATCH_GET_IDENTIFIERS}, {clients} client(s)", f"p50 {p50:.2f} ms",
                             f"p99 {p99:.2f} ms"))
        finally:
            store.stop()

    width = max(len(name) for name, *_ in rows)
    print("\nlocal feature store (this machine, through boto3):")
    for name, first, second in rows:
        print(f"  {name:<{width}}  {first:>18}  {second:>14}")
    print("\nAWS's published figures for its online store (context, not a comparison: AWS adds the network):")
    for name, figure, source in AWS_PUBLISHED:
        print(f"  {name}: {figure}\n    {source}")


if __name__ == "__main__":
    main()
