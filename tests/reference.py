"""An independent reference for the job's results, in plain Python over the same polls.

It re-states the documented semantics (README "What the job does", sql/*.sql) without Flink and without the
code under test: a poll's page is split into transactions (an entry that is not a JSON object, or has a field
of another JSON type, or an input or output of another shape, is rejected), each transaction's values are validated, late = event time at or before
the watermark in force when it arrives
(watermark = highest event time read so far minus the delay; heartbeats count), late transactions are listed
once per hash, the rest are deduplicated by (hash, time) keeping the first sighting, and ``unique`` holds
what every feature file selects from, in arrival order, each with its ``inputs`` and ``outputs`` as lists of
{"address", "value"} (None where the API left one out); ``entries(unique, "outputs")`` is unique_outputs' rows.
Feature windows over them are computed by the tests themselves (``tumbling`` / ``hopping`` below), in a few
lines each.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

STRING_FIELDS = ("hash", "relayed_by")
INT32_FIELDS = ("ver", "vin_sz", "vout_sz", "size", "weight")
INT64_FIELDS = ("fee", "lock_time", "tx_index", "time", "block_index", "block_height")
BOOLEAN_FIELDS = ("double_spend", "rbf")
# The API's order, which is the order fields are checked in.
SCALAR_FIELDS = ("hash", "ver", "vin_sz", "vout_sz", "size", "weight", "fee", "relayed_by", "lock_time", "tx_index",
                 "double_spend", "time", "block_index", "block_height", "rbf")


@dataclass
class Expected:
    features: dict[str, dict] = field(default_factory=dict)  # tx_minute -> row of tx_minute_features
    unique: list[dict] = field(default_factory=list)  # typed transactions the features select from
    # (what was rejected, reason): the entry itself when its shape or a field's type is wrong (the poller
    # rejects it), the transaction's non-null fields when its values are (the job does); a page that is not
    # JSON as its text
    dead_letter: list[tuple[Any, str]] = field(default_factory=list)
    late: list[str] = field(default_factory=list)  # hashes
    duplicates: int = 0
    first_poll: float = 0.0
    last_poll: float = 0.0
    watermark_delay_s: int = 60

    def covers(self, start: float, end: float) -> bool:
        """The edge rule (README "Edge windows"): a window is complete, and written, if it starts at or after the first
        poll and ends at or before the last poll minus the watermark delay."""
        return start >= self.first_poll and end <= self.last_poll - self.watermark_delay_s

    @property
    def complete_features(self) -> dict[str, dict]:
        """The rows of tx_minute_features the polls cover completely (what a run writes)."""
        return {key: row for key, row in self.features.items() if self.covers(row["event_time"] - 60, row["event_time"])}


TRANSACTION_ID = re.compile(r"[0-9a-f]{64}")  # a transaction hash as the API gives it

def _is_integer(value: Any, bits: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)


def _spent_problem(spent: dict, where: str) -> str | None:
    """An output (or the one an input spends): its addr a string and its value a 64-bit integer, or null/missing."""
    if spent.get("addr") is not None and not isinstance(spent["addr"], str):
        return f"{where}.addr is not a string"
    if spent.get("value") is not None and not _is_integer(spent["value"], 64):
        return f"{where}.value is not an integer"
    return None


def _type_problem(tx: Any) -> str | None:
    if not isinstance(tx, dict):
        return "not a JSON object"
    for name in SCALAR_FIELDS:
        value = tx.get(name)
        if value is None:
            continue
        if name in STRING_FIELDS and not isinstance(value, str):
            return f"{name} is not a string"
        if name in INT32_FIELDS and not _is_integer(value, 32):
            return f"{name} is not an integer"
        if name in INT64_FIELDS and not _is_integer(value, 64):
            return f"{name} is not an integer"
        if name in BOOLEAN_FIELDS and not isinstance(value, bool):
            return f"{name} is not a boolean"
    if "inputs" in tx:
        if not isinstance(tx["inputs"], list):
            return "inputs is not a list"
        for entry in tx["inputs"]:
            if not isinstance(entry, dict):
                return "inputs[] is not a JSON object"
            if entry.get("prev_out") is None:
                continue
            if not isinstance(entry["prev_out"], dict):
                return "inputs[].prev_out is not a JSON object"
            problem = _spent_problem(entry["prev_out"], "inputs[].prev_out")
            if problem:
                return problem
    if "out" in tx:
        if not isinstance(tx["out"], list):
            return "out is not a list"
        for entry in tx["out"]:
            if not isinstance(entry, dict):
                return "out[] is not a JSON object"
            problem = _spent_problem(entry, "out[]")
            if problem:
                return problem
    return None


def _value_problem(row: dict, future_tolerance_s: int, past_tolerance_s: int) -> str | None:
    if not row.get("hash"):
        return "missing hash"
    if row.get("time") is None:
        return "missing time"
    if row.get("fee") is None:
        return "missing fee"
    if row["fee"] < 0:
        return "negative fee"
    if row["ts"] == 0 and 0 < row["time"] < row["polled_at"] - past_tolerance_s:
        return f"time is more than {past_tolerance_s} s before the poll (older than any unconfirmed transaction)"
    if row["ts"] == 0:
        return f"time is not a unix time up to {future_tolerance_s} s after the poll"
    if not TRANSACTION_ID.fullmatch(row["hash"]):
        return "hash is not 64 lowercase hex characters"
    return None


def _address_and_value(spent: dict | None) -> dict:
    spent = spent or {}
    return {"address": spent.get("addr"), "value": spent.get("value")}


def _typed(tx: dict, polled_at: float, future_tolerance_s: int, past_tolerance_s: int) -> dict:
    row: dict[str, Any] = {name: tx.get(name) for name in SCALAR_FIELDS}
    row["input_count"] = len(tx["inputs"]) if "inputs" in tx else None
    row["output_count"] = len(tx["out"]) if "out" in tx else None
    row["inputs"] = [_address_and_value(entry.get("prev_out")) for entry in tx["inputs"]] if "inputs" in tx else None
    row["outputs"] = [_address_and_value(entry) for entry in tx["out"]] if "out" in tx else None
    row["polled_at"] = float(polled_at)
    time = row["time"]
    within = time is not None and time > 0 and polled_at - past_tolerance_s <= time <= polled_at + future_tolerance_s
    row["ts"] = time if within else 0
    return row


def expected_results(polls: Iterable[tuple[float, Any]], watermark_delay_s: int = 60,
                     future_tolerance_s: int = 600, past_tolerance_s: int = 14 * 24 * 3600) -> Expected:
    """``polls``: (polled_at, page) in the order the job reads them; ``page`` is the decoded page (a dict
    with a ``txs`` list), other JSON (the poll is rejected), or bytes that are not JSON (rejected too)."""
    expected = Expected(watermark_delay_s=watermark_delay_s)
    seen: set[tuple[str, int]] = set()
    late_seen: set[str] = set()
    highest: int | None = None

    def advance(ts: int) -> None:
        nonlocal highest
        highest = ts if highest is None else max(highest, ts)

    for number, (polled_at, page) in enumerate(polls):
        expected.first_poll = polled_at if number == 0 else expected.first_poll
        expected.last_poll = polled_at
        txs = page.get("txs") if isinstance(page, dict) else None
        if not isinstance(txs, list):
            reason = "poll is not valid JSON" if isinstance(page, bytes) else "poll is not a JSON object with a txs list"
            expected.dead_letter.append((page.decode(errors="replace") if isinstance(page, bytes) else page, reason))
            advance(0)
            txs = []
        for tx in txs:
            problem = _type_problem(tx)
            if problem:
                expected.dead_letter.append((tx, problem))
                advance(0)
                continue
            row = _typed(tx, polled_at, future_tolerance_s, past_tolerance_s)
            ts = row["ts"]
            reason = _value_problem(row, future_tolerance_s, past_tolerance_s)
            watermark = None if highest is None else highest - watermark_delay_s
            if reason is not None:
                # written back as the job read it, without its lists (the job reads them only for its features)
                written = {k: v for k, v in row.items() if v is not None and k not in ("ts", "inputs", "outputs")}
                expected.dead_letter.append((written, reason))
            elif watermark is not None and ts <= watermark:
                if row["hash"] not in late_seen:
                    late_seen.add(row["hash"])
                    expected.late.append(row["hash"])
            elif (row["hash"], ts) in seen:
                expected.duplicates += 1
            else:
                seen.add((row["hash"], ts))
                expected.unique.append(row)
            advance(ts)  # the watermark follows the record that moved it (records first, then the watermark)
        advance(int(polled_at))  # the poll's heartbeat
    expected.features = {row["tx_minute"]: row for row in tumbling(expected.unique, 60, minute_features)}
    return expected


def entries(unique: list[dict], lists: str) -> list[dict]:
    """One row per entry of each transaction's ``lists`` ("inputs" or "outputs"), as unique_inputs / unique_outputs
    hold them: the transaction's hash, time, polled_at and ts, the entry's position in its list, address and value."""
    return [{"hash": row["hash"], "position": position, **entry, "time": row["time"], "polled_at": row["polled_at"],
             "ts": row["ts"]}
            for row in unique for position, entry in enumerate(row[lists] or [])]


def minute_key(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def minute_features(start: int, end: int, rows: list[dict]) -> dict:
    fees = [row["fee"] for row in rows]
    return {"tx_minute": minute_key(start), "event_time": float(end), "total_nb_trx_1min": len(fees),
            "total_fee_1min": sum(fees), "avg_fee_1min": sum(fees) / len(fees)}


def tumbling(rows: list[dict], size_s: int, aggregate: Callable[[int, int, list[dict]], dict],
             key: Callable[[dict], Any] = lambda row: None) -> list[dict]:
    """One output row per (window, key) that holds rows; windows [start, start + size) by ``ts``."""
    return hopping(rows, size_s, size_s, aggregate, key)


def cumulating(rows: list[dict], step_s: int, size_s: int, aggregate: Callable[[int, int, list[dict]], dict]) -> list[dict]:
    """Windows that start every ``size_s`` and end every ``step_s`` after the start until ``size_s``."""
    windows: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for row in rows:
        start = row["ts"] // size_s * size_s
        for end in range(start + step_s, start + size_s + 1, step_s):
            if row["ts"] < end:
                windows[(start, end)].append(row)
    return [aggregate(start, end, members) for (start, end), members in sorted(windows.items())]


def hopping(rows: list[dict], size_s: int, slide_s: int, aggregate: Callable[[int, int, list[dict]], dict],
            key: Callable[[dict], Any] = lambda row: None) -> list[dict]:
    """Windows of ``size_s`` every ``slide_s`` (aligned to the epoch), per key, in (start, key) order."""
    windows: dict[tuple[int, Any], list[dict]] = defaultdict(list)
    for row in rows:
        last_start = row["ts"] // slide_s * slide_s
        for start in range(last_start, row["ts"] - size_s, -slide_s):
            windows[(start, key(row))].append(row)
    ordered = sorted(windows.items(), key=lambda item: (item[0][0], str(item[0][1])))
    return [aggregate(start, start + size_s, members) for (start, _key), members in ordered]
