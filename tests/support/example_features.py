"""The example feature files (sql/features/examples/ and the shipped group) as the independent reference computes
them, a recording whose transactions come from three relaying nodes and pay a few addresses (for the entity-keyed
examples), and what a feature store holds, read back: the run, pipeline and backfill tests share them."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.blockchain.source import read_recording
from connectors.blockchain.synthetic import SyntheticProfile, write_recording
from connectors.featurestore.local.server import LocalFeatureStoreServer
from job.flow.sql_files import FEATURES_DIR
from job.local.data_dir import DataDir
from tests.reference import cumulating, entries, hopping, minute_features, minute_key, tumbling
from tests.support import GROUP, online_rows
from tests.support.store_records import offline_rows

RELAYS = ("10.0.0.1", "10.0.0.2", "10.0.0.3")
# The addresses the recording's inputs and outputs use: a few, so that each receives in most minutes.
ADDRESSES = tuple(f"bc1qexample{number:02d}" for number in range(6))
EXAMPLES = ("size_5min", "relay_minute", "fee_10min_so_far", "address_minute")  # the examples the docs show
OFFLINE_ONLY = ("write_time", "api_invocation_time", "is_deleted")  # what the store adds to every offline row


def write_relayed_recording(path: Path, profile: SyntheticProfile) -> Path:
    """A synthetic recording whose transactions come from three relaying nodes and whose inputs and outputs use the
    few ADDRESSES (the same for every sighting); one entry in seven has no address: an input without the output it
    spends (prev_out), an output without addr."""
    source = path.with_name(path.stem + ".synthetic.jsonl")
    write_recording(source, profile)
    with open(path, "w") as out:
        for poll in read_recording(source):
            txs = [_with_addresses({**tx, "relayed_by": RELAYS[int(tx["hash"][:4], 16) % 3]}) for tx in poll.txs]
            out.write(json.dumps({"polled_at": poll.polled_at, "txs": txs}) + "\n")
    return path


def _address(tx_hash: str, side: str, position: int) -> str | None:
    pick = int(hashlib.sha256(f"{tx_hash}/{side}/{position}".encode()).hexdigest()[:8], 16) % (len(ADDRESSES) + 1)
    return ADDRESSES[pick] if pick < len(ADDRESSES) else None


def _with_addresses(tx: dict) -> dict:
    inputs = []
    for position, entry in enumerate(tx["inputs"]):
        address = _address(tx["hash"], "in", position)
        spent = {key: value for key, value in entry.items() if key != "prev_out"}
        inputs.append(spent if address is None else {**spent, "prev_out": {**entry["prev_out"], "addr": address}})
    outputs = []
    for position, entry in enumerate(tx["out"]):
        address = _address(tx["hash"], "out", position)
        spent = {key: value for key, value in entry.items() if key != "addr"}
        outputs.append(spent if address is None else {**spent, "addr": address})
    return {**tx, "inputs": inputs, "out": outputs}


def features_with_examples(directory: Path) -> Path:
    """A features directory with the shipped group and every example."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(FEATURES_DIR / f"{GROUP}.sql", directory)
    for example in EXAMPLES:
        shutil.copy(FEATURES_DIR / "examples" / f"{example}.sql", directory)
    return directory


@dataclass(frozen=True)
class Window:
    start: int
    end: int
    row: dict[str, Any]


def _size_5min(start: int, end: int, rows: list[dict]) -> dict:
    return {"window_start_utc": minute_key(start), "event_time": float(end), "nb_trx_5min": len(rows),
            "avg_size_5min": sum(row["size"] for row in rows) / len(rows),
            "total_inputs_5min": sum(row["input_count"] for row in rows)}


def _relay_minute(start: int, end: int, rows: list[dict]) -> dict:
    return {"relayed_by": rows[0]["relayed_by"], "event_time": float(end), "nb_trx_1min": len(rows),
            "max_fee_1min": max(row["fee"] for row in rows), "nb_rbf_1min": sum(1 for row in rows if row["rbf"])}


def _address_minute(start: int, end: int, rows: list[dict]) -> dict:
    values = [row["value"] for row in rows if row["value"] is not None]
    return {"address": rows[0]["address"], "event_time": float(end), "nb_outputs_1min": len(rows),
            "nb_trx_1min": len({row["hash"] for row in rows}), "total_received_1min": sum(values) if values else None}


def _input_addresses_minute(start: int, end: int, rows: list[dict]) -> dict:
    return {"tx_minute": minute_key(start), "event_time": float(end),
            "input_addresses": sorted({row["address"] for row in rows}), "nb_inputs_1min": len(rows)}


def _fee_so_far(start: int, end: int, rows: list[dict]) -> dict:
    return {"window_end_utc": minute_key(end), "event_time": float(end), "total_fee_so_far": sum(row["fee"] for row in rows)}


def _windows(aggregate):
    return lambda start, end, rows: Window(start, end, aggregate(start, end, rows))


def example_windows(unique: list[dict]) -> dict[str, list[Window]]:
    """Every window of the shipped group and the examples over the reference's unique transactions."""
    return {
        GROUP: tumbling(unique, 60, _windows(minute_features)),
        "size_5min": hopping(unique, 300, 60, _windows(_size_5min)),
        "relay_minute": tumbling(unique, 60, _windows(_relay_minute), key=lambda row: row["relayed_by"]),
        "fee_10min_so_far": cumulating(unique, 60, 600, _windows(_fee_so_far)),
        "address_minute": tumbling([row for row in entries(unique, "outputs") if row["address"] is not None], 60,
                                   _windows(_address_minute), key=lambda row: row["address"]),
        # an ARRAY<STRING> column: a List of String feature (not in EXAMPLES: its group is InMemory)
        "input_addresses_minute": tumbling([row for row in entries(unique, "inputs") if row["address"] is not None],
                                           60, _windows(_input_addresses_minute)),
    }


def by_key(rows: list[dict]) -> dict[tuple, dict]:
    """Feature rows by (record identifier, event time): the first column is the record identifier."""
    return {(next(iter(row.values())), row["event_time"]): row for row in rows}


def newest_online(rows: list[dict]) -> dict[Any, dict]:
    """What the online store keeps of ``rows``: per record identifier, the row with the newest event time."""
    newest: dict[Any, dict] = {}
    for row in rows:
        key = next(iter(row.values()))
        if key not in newest or row["event_time"] > newest[key]["event_time"]:
            newest[key] = row
    return newest


def offline_newest(data_dir: Path, group: str) -> dict[tuple, dict]:
    """The offline store read as "newest write per (record identifier, event time)", without the store's columns."""
    newest: dict[tuple, dict] = {}
    for row in sorted(offline_rows(data_dir, group), key=lambda row: row["write_time"]):
        newest[(next(iter(row.values())), row["event_time"])] = {k: v for k, v in row.items() if k not in OFFLINE_ONLY}
    return newest


def store_state(data_dir: Path, groups: list[str], server: LocalFeatureStoreServer | None = None) -> dict[str, dict]:
    """Per group: its online records, its offline store (newest write per key) and how many offline rows it has;
    read through ``server`` (flushed first), else a server started on the data dir's store for the call."""
    if server is None:
        with LocalFeatureStoreServer(DataDir(data_dir).featurestore, port=0).start() as started:
            return store_state(data_dir, groups, started)
    server.store.flush_offline()
    online = {group: online_rows(server.url, group) for group in groups}
    return {group: {"online": online[group], "offline": offline_newest(data_dir, group),
                    "offline_rows": len(offline_rows(data_dir, group))} for group in groups}


def write_feature_with_unknown_column(features: Path) -> tuple[Path, str]:
    """A features directory whose one file selects a column the transactions do not have (`sizes`), and the one
    error a command must give for it: ``file:line:column: message``."""
    features.mkdir(parents=True)
    path = features / "bad_size.sql"
    path.write_text(
        "-- average size over 5 minutes\n"
        "CREATE TEMPORARY VIEW bad_size AS\n"
        "SELECT\n"
        "    DATE_FORMAT(window_start, 'yyyy-MM-dd HH:mm:ss') AS window_start_utc,\n"
        "    CAST(UNIX_TIMESTAMP(DATE_FORMAT(window_end, 'yyyy-MM-dd HH:mm:ss')) AS DOUBLE) AS event_time,\n"
        "    AVG(CAST(sizes AS DOUBLE)) AS avg_size\n"
        "FROM TABLE(TUMBLE(TABLE unique_transactions, DESCRIPTOR(ts), INTERVAL '5' MINUTE))\n"
        "GROUP BY window_start, window_end;\n"
    )
    return features, f"{path}:6:14: Column 'sizes' not found in any table"
