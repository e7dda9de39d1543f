"""An independent reference for the job's results, in plain Python over the same polls.

It re-states the documented semantics (README "What the job does", sql/*.sql) without Flink and without the
code under test: a poll's page is split into transactions (an entry that is not a JSON object is rejected),
each transaction is validated, late = event time at or before the watermark in force when it arrives
(watermark = highest event time read so far minus the delay; heartbeats count), late transactions are listed
once per hash, the rest are deduplicated by (hash, time) keeping the first sighting, and ``unique`` holds
what every feature file selects from, in arrival order. Feature windows over ``unique`` are computed by the
tests themselves (``tumbling`` / ``hopping`` below), in a few lines each.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

INTEGER_FIELDS = ("ver", "vin_sz", "vout_sz", "size", "weight", "fee", "lock_time", "tx_index", "time",
                  "block_index", "block_height")
INT32_FIELDS = {"ver", "vin_sz", "vout_sz", "size", "weight"}
BOOLEAN_FIELDS = ("double_spend", "rbf")
SCALAR_FIELDS = ("hash", "ver", "vin_sz", "vout_sz", "size", "weight", "fee", "relayed_by", "lock_time", "tx_index",
                 "double_spend", "time", "block_index", "block_height", "rbf")


@dataclass
class Expected:
    features: dict[str, dict] = field(default_factory=dict)  # tx_minute -> row of tx_minute_features
    unique: list[dict] = field(default_factory=list)  # typed transactions the features select from
    # (what was rejected, reason): the entry itself when the poller rejected it, the transaction's fields as
    # the job read them (texts) when the job did, the raw text of a page that is not JSON
    dead_letter: list[tuple[Any, str]] = field(default_factory=list)
    late: list[str] = field(default_factory=list)  # hashes
    duplicates: int = 0


def _text(value: Any) -> str | None:
    """A JSON value as the job reads it: strings as they are, anything else as its JSON text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _integer(text: str | None, bits: int = 64) -> int | None:
    """The integer a text is written as, or None ('1.5', ' 1', '01' and out-of-range values are not)."""
    if text is None:
        return None
    try:
        number = int(text)
    except ValueError:
        return None
    if str(number) != text or not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
        return None
    return number


def _event_time(texts: dict[str, str | None], future_tolerance_s: int) -> int:
    time = _integer(texts.get("time"))
    try:
        polled_at = float(texts["polled_at"]) if texts.get("polled_at") is not None else 1e18
    except ValueError:
        polled_at = 1e18
    return time if time is not None and 0 < time <= polled_at + future_tolerance_s else 0


def _reason(texts: dict[str, str | None], ts: int, future_tolerance_s: int) -> str | None:
    if not texts.get("hash"):
        return "missing hash"
    if texts.get("time") is None:
        return "missing time"
    if texts.get("fee") is None:
        return "missing fee"
    fee = _integer(texts["fee"])
    if fee is None:
        return "fee is not an integer"
    if fee < 0:
        return "negative fee"
    if ts == 0:
        return f"time is not a unix time up to {future_tolerance_s} s after the poll"
    for name in ("ver", "vin_sz", "vout_sz", "size", "weight", "lock_time", "tx_index", "block_index", "block_height"):
        if texts.get(name) is not None and _integer(texts[name], 32 if name in INT32_FIELDS else 64) is None:
            return f"{name} is not an integer"
    for name in BOOLEAN_FIELDS:
        if texts.get(name) is not None and texts[name] not in ("true", "false"):
            return f"{name} is not a boolean"
    return None


def _typed(texts: dict[str, str | None], ts: int) -> dict:
    row: dict[str, Any] = {"hash": texts["hash"], "relayed_by": texts.get("relayed_by")}
    for name in INTEGER_FIELDS:
        row[name] = _integer(texts.get(name))
    for name in BOOLEAN_FIELDS:
        row[name] = None if texts.get(name) is None else texts[name] == "true"
    row["input_count"] = _integer(texts.get("input_count"))
    row["output_count"] = _integer(texts.get("output_count"))
    row["polled_at"] = float(texts["polled_at"]) if texts.get("polled_at") is not None else None
    row["ts"] = ts
    return row


def expected_results(polls: Iterable[tuple[float, Any]], watermark_delay_s: int = 60,
                     future_tolerance_s: int = 600) -> Expected:
    """``polls``: (polled_at, page) in the order the job reads them; ``page`` is the decoded page (a dict
    with a ``txs`` list), other JSON (the poll is rejected), or bytes that are not JSON (rejected too)."""
    expected = Expected()
    seen: set[tuple[str, int]] = set()
    late_seen: set[str] = set()
    highest: int | None = None

    def advance(ts: int) -> None:
        nonlocal highest
        highest = ts if highest is None else max(highest, ts)

    for polled_at, page in polls:
        txs = page.get("txs") if isinstance(page, dict) else None
        if not isinstance(txs, list):
            reason = "poll is not valid JSON" if isinstance(page, bytes) else "poll is not a JSON object with a txs list"
            expected.dead_letter.append((page.decode(errors="replace") if isinstance(page, bytes) else page, reason))
            advance(0)
            txs = []
        for tx in txs:
            if not isinstance(tx, dict):
                expected.dead_letter.append((tx, "not a JSON object"))
                advance(0)
                continue
            not_lists = [name for name in ("inputs", "out") if name in tx and not isinstance(tx[name], list)]
            if not_lists:
                expected.dead_letter.append((tx, f"{not_lists[0]} is not a list"))
                advance(0)
                continue
            texts = {name: _text(tx.get(name)) for name in SCALAR_FIELDS}
            for name, count in (("inputs", "input_count"), ("out", "output_count")):
                texts[count] = str(len(tx[name])) if isinstance(tx.get(name), list) else None
            texts["polled_at"] = _text(polled_at)
            ts = _event_time(texts, future_tolerance_s)
            reason = _reason(texts, ts, future_tolerance_s)
            watermark = None if highest is None else highest - watermark_delay_s
            if reason is not None:
                expected.dead_letter.append(({k: v for k, v in texts.items() if v is not None}, reason))
            elif watermark is not None and ts <= watermark:
                if texts["hash"] not in late_seen:
                    late_seen.add(texts["hash"])
                    expected.late.append(texts["hash"])
            elif (texts["hash"], ts) in seen:
                expected.duplicates += 1
            else:
                seen.add((texts["hash"], ts))
                expected.unique.append(_typed(texts, ts))
            advance(ts)  # the watermark follows the record that moved it (records first, then the watermark)
        advance(int(polled_at))  # the poll's heartbeat
    expected.features = {row["tx_minute"]: row for row in tumbling(expected.unique, 60, minute_features)}
    return expected


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
