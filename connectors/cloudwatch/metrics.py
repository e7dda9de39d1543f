"""Counters sent to CloudWatch with PutMetricData, one call per interval (not per event).

A failed send keeps its counts for the next one, so a CloudWatch outage delays metrics but loses none;
it never stops the process that counts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors import DEFAULT_REGION
from connectors.retry import RetryPolicy

log = logging.getLogger(__name__)

_MAX_DATUMS_PER_CALL = 1000


@dataclass(frozen=True)
class CloudWatchConfig:
    namespace: str
    dimensions: Mapping[str, str] = field(default_factory=dict)
    region: str = DEFAULT_REGION
    endpoint_url: str | None = None
    interval_s: float = 60.0

    def client(self) -> Any:
        import boto3

        return boto3.client("cloudwatch", region_name=self.region, endpoint_url=self.endpoint_url)


class CloudWatchCounters:
    def __init__(self, config: CloudWatchConfig, client: Any = None, retry: RetryPolicy = RetryPolicy(max_attempts=3),
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.client = client or config.client()
        self.retry = retry
        self.clock = clock
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, counts: Mapping[str, float]) -> None:
        with self._lock:
            for name, value in counts.items():
                self._pending[name] = self._pending.get(name, 0) + value

    def flush(self) -> bool:
        """Send what was counted since the last successful send; False (and counts kept) on failure."""
        with self._lock:
            counts, self._pending = self._pending, {}
        if not counts:
            return True
        dimensions = [{"Name": name, "Value": value} for name, value in self.config.dimensions.items()]
        datums = [{"MetricName": name, "Dimensions": dimensions, "Value": float(value), "Unit": "Count",
                   "Timestamp": self.clock()} for name, value in sorted(counts.items())]
        try:
            for start in range(0, len(datums), _MAX_DATUMS_PER_CALL):
                chunk = datums[start:start + _MAX_DATUMS_PER_CALL]
                self.retry.call(f"PutMetricData {self.config.namespace}", lambda: self.client.put_metric_data(
                    Namespace=self.config.namespace, MetricData=chunk))
        except Exception as error:  # noqa: BLE001 - metrics must never stop the poller
            log.warning("metrics not sent to CloudWatch (%s); keeping them for the next try", error)
            self.add(counts)
            return False
        return True


class StatsReporter:
    """Every ``interval_s``, sends the growth of a stats snapshot's counters (polls, gaps, ...)."""

    def __init__(self, counters: CloudWatchCounters, snapshot: Callable[[], Mapping[str, Any]],
                 names: Mapping[str, str]) -> None:
        self.counters = counters
        self.snapshot = snapshot
        self.names = names  # snapshot key -> metric name
        self._last = {key: 0 for key in names}

    def report(self) -> bool:
        current = self.snapshot()
        growth = {metric: current[key] - self._last[key] for key, metric in self.names.items()}
        self._last = {key: current[key] for key in self.names}
        self.counters.add(growth)
        return self.counters.flush()

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.counters.config.interval_s):
            self.report()
        self.report()
