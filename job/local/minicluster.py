"""Flink in this process (a MiniCluster), as `chainfeat run` and `chainfeat backfill` start it: what a local job
gets beyond the job's own settings (job/flow/flink_settings.py), in one place."""

from __future__ import annotations

import contextlib
import gc
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from job.local.monitor import METRICS_REFRESH_S
from job.local.worker_boot import worker_launcher
from job.paths import CACHE


@contextlib.contextmanager
def planning_from_this_thread() -> Iterator[None]:
    """Keep the JVM's planner calls on one Java thread while a job is built and submitted.

    Flink's planner keeps Calcite's metadata provider in a Java thread-local, so planning on another Java thread than
    the one that made the planner fails with "NullPointerException: metadataHandlerProvider" (FLINK-23020). py4j
    serves a Python thread's calls over whichever of its connections (each a Java thread) is free, newest first; and
    a Java object collected by Python's cyclic garbage collector in another thread (a poller replaying at full speed
    collects often) releases its reference over a connection of that moment, opening a new one if the planning call
    holds the other: the next planning call can then land on the new Java thread. With the collector paused while
    the job is planned and submitted (a few seconds, its garbage freed right after), only this thread talks to the
    JVM."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def free_port() -> int:
    """A free TCP port on the loopback interface (the dashboard's, when none is asked for)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def use_log_dir(logs: Path) -> None:
    """Flink writes its logs into PyFlink's install unless told otherwise: into ``logs`` (a FLINK_LOG_DIR the user
    set is kept)."""
    os.environ.setdefault("FLINK_LOG_DIR", str(logs))
    logs.mkdir(parents=True, exist_ok=True)


def minicluster_settings() -> dict[str, str]:
    """Flink keys for a job in this process: its Python workers boot fast (worker_boot.py), and the REST API's
    metrics refresh as often as the live view and the monitor read them."""
    return {"python.executable": worker_launcher(CACHE / "jvm"),
            "metrics.fetcher.update-interval": str(round(METRICS_REFRESH_S * 1000))}
