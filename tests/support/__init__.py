"""Helpers shared by the tests (one copy each)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

from connectors.blockchain.source import Poll, read_recording
from connectors.blockchain.synthetic import SyntheticProfile
from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig
from connectors.flink_rest import FlinkRest
from connectors.spool import FeedPublisher, SpoolWriter
from job.flow.config import DEFAULT_PROPERTIES
from job.local.minicluster import free_port  # noqa: F401 - one copy, re-exported for the tests

# What a Flink job run in this process leaves in os.environ: PyFlink's gateway marks, and the settings its
# in-process ("loopback") Python worker pool copies in from the TaskManager. A subprocess must not inherit
# them: with PYTHON_LOOPBACK_SERVER_ADDRESS a Flink process started from here (a standalone cluster, a
# `chainfeat run`) hands its Python work to this process's pool, which then takes that process's environment.
_IN_PROCESS_FLINK_KEYS = ("PYTHON_LOOPBACK_SERVER_ADDRESS", "_PYTHON_WORKER_MEMORY_LIMIT", "BOOT_LOG_DIR",
                          "SEMI_PERSISTENT_DIRECTORY")


def child_environment() -> dict[str, str]:
    """This process's environment without what an in-process Flink job put there, for subprocesses."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("PYFLINK_", "_PYFLINK_")) and key not in _IN_PROCESS_FLINK_KEYS}


def cli_environment(data_dir: Path) -> dict[str, str]:
    """Environment for running the real CLI in a subprocess against ``data_dir`` (the cli_env fixture's)."""
    from tests.conftest import REPO_ROOT

    # PyFlink runs Python UDF workers inside this process ("loopback") and marks the environment so that they
    # do not start a gateway; a CLI subprocess must not inherit that mark.
    env = child_environment()
    env["CHAINFEAT_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.pop("CHAINFEAT_FEATURESTORE_URL", None)
    return env


def chainfeat(env: dict, *args: str) -> subprocess.CompletedProcess:
    """The CLI run as a user runs it (a subprocess), with ``env`` (the cli_env fixture's)."""
    from tests.conftest import CHAINFEAT

    return subprocess.run([*CHAINFEAT, *args], env=env, capture_output=True, text=True, timeout=120)


def error_lines(stderr: str) -> list[str]:
    """The lines a command printed as its error (job/cli/common.py `fail`: "error: ..."), for one-message checks."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (its JVM, the JVM's Python workers), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


# The 9-minute synthetic recording (a burst included) that the run tests and bench/reliability.py replay.
SHORT_PROFILE = SyntheticProfile(duration_s=540, seed=11, burst_every_s=300, burst_length_s=45)


def properties_with_store(url: str, directory: Path, retry_timeout_s: float | None = None,
                          write_concurrency: int | None = None) -> Path:
    """The shipped properties file, with the feature store at ``url`` (a server the test controls) and,
    if given, how long the job's writer retries before it fails and how many calls it has in flight."""
    groups = json.loads(DEFAULT_PROPERTIES.read_text())
    for group in groups:
        if group["PropertyGroupId"] == "FeatureStore":
            group["PropertyMap"]["endpoint.url"] = url
            if retry_timeout_s is not None:
                group["PropertyMap"]["write.retry.timeout.s"] = str(retry_timeout_s)
            if write_concurrency is not None:
                group["PropertyMap"]["write.concurrency"] = str(write_concurrency)
    path = directory / "properties.json"
    path.write_text(json.dumps(groups))
    return path


def replay_shift(data_dir: Path, recording: Path) -> int:
    """How far a replay in ``data_dir`` moved the recording's times (whole minutes; 0 at speed 0)."""
    state = json.loads((data_dir / "poller" / "replay.json").read_text())
    if state.get("origin") is None:
        return 0
    first = next(read_recording(recording)).polled_at
    return int((state["origin"] - first) // 60 * 60)


# ---- the scenario the job's tests share: a few polls with every case the job must handle ----

T0 = 1714521600  # 2024-05-01 00:00:00 UTC, a minute boundary
GROUP = "tx_minute_features"  # the shipped feature group


def tx_id(name: str) -> str:
    """A transaction hash (64 hex characters) named by a short name in the tests."""
    return hashlib.sha256(name.encode()).hexdigest()


def tx(name: str, offset_s: int, fee, **fields) -> dict:
    """A transaction as the API lists it: one input, two outputs (the second without an address, as a
    non-standard output has none)."""
    return {"hash": tx_id(name), "time": T0 + offset_s, "fee": fee, "size": 250, "vin_sz": 1, "vout_sz": 2,
            "inputs": [{"sequence": 0, "prev_out": {"addr": f"bc1q-{name}-in", "value": 10_000, "n": 0}}],
            "out": [{"n": 0, "addr": f"bc1q-{name}-out", "value": 9_000}, {"n": 1, "value": 1_000 - fee}], **fields}


MALFORMED = [
    5,
    [1, 2, 3],
    {"time": T0 + 66, "fee": 1},
    {"hash": "no-time", "fee": 1},
    {"hash": "no-fee", "time": T0 + 66},
    {"hash": "fee-text", "time": T0 + 66, "fee": "abc"},
    {"hash": "fee-fraction", "time": T0 + 66, "fee": 1.5},
    {"hash": "fee-negative", "time": T0 + 66, "fee": -5},
    {"hash": "fee-negative-lists", "time": T0 + 66, "fee": -5, "inputs": [{"prev_out": {"addr": "bc1qa", "value": 9}}, {}],
     "out": [{"value": 3}, {"addr": "bc1qb", "value": 2**62, "n": 1}]},  # written back without its lists
    {"hash": "time-text", "time": "yesterday", "fee": 5},
    {"hash": "time-future", "time": T0 + 100_000, "fee": 5},
    {"hash": "time-1970", "time": 1, "fee": 5},
    {"hash": "time-weeks-old", "time": T0 - 15 * 24 * 3600, "fee": 5},
    {"hash": "not-a-transaction-id", "time": T0 + 66, "fee": 5},
    {"hash": "A" * 64, "time": T0 + 66, "fee": 5},
    {"hash": "a" * 63 + "F", "time": T0 + 66, "fee": 5},
    {"hash": "0" * 63 + "g", "time": T0 + 66, "fee": 5},
    {"hash": "ab" * 5000, "time": T0 + 66, "fee": 5},
    {"hash": "0" * 63 + "\u00e9", "time": T0 + 66, "fee": 5},
    {"hash": "\U0001f600" * 16, "time": T0 + 66, "fee": 5},
    {"hash": "size-text", "time": T0 + 66, "fee": 5, "size": "big"},
    {"hash": "ver-fraction", "time": T0 + 66, "fee": 5, "ver": 1.5},
    {"hash": "double-spend-text", "time": T0 + 66, "fee": 5, "double_spend": "maybe"},
    {"hash": "inputs-text", "time": T0 + 66, "fee": 5, "inputs": "none"},
    {"hash": "input-number", "time": T0 + 66, "fee": 5, "inputs": [{"prev_out": {"addr": "bc1qa", "value": 1}}, 7]},
    {"hash": "input-address-number", "time": T0 + 66, "fee": 5, "inputs": [{"prev_out": {"addr": 12, "value": 1}}]},
    {"hash": "output-value-fraction", "time": T0 + 66, "fee": 5, "out": [{"addr": "bc1qb", "value": 0.5}]},
    {"hash": ["a", "list"], "time": T0 + 66, "fee": 5},
]


def scenario() -> list[Poll]:
    """Duplicates within and across polls, out-of-order within the watermark, late beyond it, malformed."""
    return [
        # Poll 1: newest first, as the API lists them; B twice in the same poll.
        Poll(T0 + 20, [tx("C", 15, 300), tx("B", 10, 200), tx("B", 10, 200), tx("A", 5, 100)]),
        # Poll 2: C again (re-polled), E out of order but within the 60 s delay, then malformed entries.
        Poll(T0 + 70, [tx("D", 65, 50), tx("C", 15, 300), tx("E", 40, 70), *MALFORMED]),
        Poll(T0 + 75, page=b"this is not json {"),
        # Poll 3: F moves the watermark to T0+130; G (T0+100) is then late; H (T0+135) is on time.
        Poll(T0 + 200, [tx("F", 190, 10, rbf=True), tx("G", 100, 20), tx("H", 135, 5, double_spend=False)]),
        # Poll 4: G again (a duplicate of a late transaction), I.
        Poll(T0 + 260, [tx("G", 100, 20), tx("I", 250, 1)]),
    ]


def reference_input(polls: list[Poll]) -> list[tuple[float, object]]:
    decoded = []
    for poll in polls:
        try:
            decoded.append((poll.polled_at, json.loads(poll.page)))
        except ValueError:
            decoded.append((poll.polled_at, poll.page))
    return decoded


def sink_rows(directory: Path) -> list[dict]:
    rows = []
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.name.startswith((".", "_")):
            rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def online_rows(url: str, group: str) -> dict[str, dict]:
    client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=url))
    definition = client.describe(group)
    ids = client.list_record_identifiers(group)
    return {row[definition.record_identifier]: row for row in client.get_records(group, ids)}


def publish(data_dir: Path, polls: list[Poll]) -> Path:
    """The polls through the real spool writer and feed publisher: one feed file, as `chainfeat run` writes it."""
    writer = SpoolWriter(data_dir / "spool", durable=False)
    for poll in polls:
        writer.write(poll)
    published = FeedPublisher(data_dir / "spool", data_dir / "feed").publish()
    assert published is not None
    return published


def min_input_watermark(rest: FlinkRest, job_id: str, vertex_name_pattern: str) -> int | None:
    """The lowest current input watermark (ms) of the job's vertices whose name matches, if any reported."""
    regex = re.compile(vertex_name_pattern)
    lowest: int | None = None
    for vertex in rest.job(job_id).get("vertices", []):
        if not regex.search(vertex["name"]):
            continue
        for entry in rest.get(f"/jobs/{job_id}/vertices/{vertex['id']}/watermarks") or []:
            value = int(float(entry["value"]))
            lowest = value if lowest is None else min(lowest, value)
    return lowest

