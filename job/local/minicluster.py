"""Flink in this process (a MiniCluster), as `chainfeat run` and `chainfeat backfill` start it: what a local job
gets beyond the job's own settings (job/flow/flink_settings.py), in one place."""

from __future__ import annotations

import contextlib
import gc
import os
import random
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


# Outgoing connections (py4j's, the Python workers', the feature store clients') take their local port from the
# kernel's ephemeral range, so a port found free there can be taken by one of them before the server that was to bind
# it does ("Could not start rest endpoint on any port", seen in a 10 M benchmark run). free_port picks below it.
EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_FREE_PORT = 20000  # clear of the well-known ports and of most services' defaults
_FREE_PORT_TRIES = 50


def free_port() -> int:
    """A free TCP port on the loopback interface (the dashboard's, when none is asked for) for a server this process
    or a child starts soon: below the ephemeral range where the system states one, else any the kernel gives."""
    try:
        ephemeral_from = int(EPHEMERAL_PORTS.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_from = LOWEST_FREE_PORT
    below = range(LOWEST_FREE_PORT, ephemeral_from)
    for port in [*random.sample(below, min(_FREE_PORT_TRIES, len(below))), 0]:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError("no free TCP port on 127.0.0.1")


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
