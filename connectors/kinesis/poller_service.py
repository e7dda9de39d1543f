"""The poller as a service (the Fargate container): live API → Kinesis, configured by environment.

    CHAINFEAT_STREAM=chainfeat-ingest AWS_REGION=eu-west-1 python -m connectors.kinesis.poller_service
    python -m connectors.kinesis.poller_service --check     # container HEALTHCHECK: polled recently?

With CHAINFEAT_METRICS_NAMESPACE set, it sends Polls, Transactions, Gaps, PollErrors, RecordsPut and
RecordsResent to CloudWatch once a minute (dimension Stream), for the dashboard and alarms.

Only what polling needs is imported (boto3, urllib3): the image stays small, without Flink.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from connectors import DEFAULT_REGION
from connectors.blockchain.poller import Poller
from connectors.blockchain.source import LIVE_URL, LiveSource, Poll
from connectors.cloudwatch.metrics import CloudWatchConfig, CloudWatchCounters, StatsReporter
from connectors.kinesis.producer import KinesisConfig, KinesisWriter

ALIVE_FILE = Path(os.environ.get("CHAINFEAT_ALIVE_FILE", "/tmp/chainfeat-poller-alive"))


def healthy(max_age_s: float) -> bool:
    try:
        return time.time() - ALIVE_FILE.stat().st_mtime < max_age_s
    except FileNotFoundError:
        return False


POLLER_METRICS = {"polls": "Polls", "transactions": "Transactions", "gaps": "Gaps", "errors": "PollErrors",
                  "records_sent": "RecordsPut", "records_resent": "RecordsResent"}


def metrics_reporter(poller: Poller, writer: KinesisWriter, stream: str, region: str) -> StatsReporter | None:
    namespace = os.environ.get("CHAINFEAT_METRICS_NAMESPACE")
    if not namespace:
        return None
    config = CloudWatchConfig(namespace, {"Stream": stream}, region,
                              endpoint_url=os.environ.get("CHAINFEAT_CLOUDWATCH_ENDPOINT") or None,
                              interval_s=float(os.environ.get("CHAINFEAT_METRICS_INTERVAL_S", "60")))

    def snapshot() -> dict[str, object]:
        return {**poller.stats.snapshot(), "records_sent": writer.records_sent, "records_resent": writer.records_resent}

    return StatsReporter(CloudWatchCounters(config), snapshot, POLLER_METRICS)


def main(argv: list[str]) -> int:
    interval = float(os.environ.get("CHAINFEAT_POLL_INTERVAL_S", "15"))
    if "--check" in argv:
        return 0 if healthy(max_age_s=4 * interval + 30) else 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stream = os.environ.get("CHAINFEAT_STREAM")
    if not stream:
        print("CHAINFEAT_STREAM (the Kinesis stream name) is not set", file=sys.stderr)
        return 2
    region = os.environ.get("AWS_REGION", DEFAULT_REGION)
    writer = KinesisWriter(KinesisConfig(stream, region=region,
                                         endpoint_url=os.environ.get("CHAINFEAT_KINESIS_ENDPOINT") or None))

    def alive(_poll: Poll) -> None:
        ALIVE_FILE.touch()

    poller = Poller(LiveSource(os.environ.get("CHAINFEAT_API_URL", LIVE_URL)), writer, interval,
                    min(float(os.environ.get("CHAINFEAT_MIN_POLL_INTERVAL_S", "5")), interval), on_poll=alive)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    reporter = metrics_reporter(poller, writer, stream, region)
    # The reporter stops after the poller: a poll in flight when the signal came is counted in the last report.
    poller_stopped = threading.Event()
    reporting = threading.Thread(target=reporter.run, args=(poller_stopped,), daemon=True) if reporter else None
    if reporting:
        reporting.start()
    poller.run(stop)
    poller_stopped.set()
    if reporting:
        reporting.join(timeout=30)  # the last counts go out before the container stops
    logging.info("stopped after %s", poller.stats.snapshot())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
