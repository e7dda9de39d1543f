"""An independent reference for the job's results, in plain Python over the same input lines.

It re-states the documented semantics (sql/*.sql) without Flink: validation reasons, first-seen dedup by
hash, late = event time at or before the watermark in force when the transaction arrives (watermark =
highest event time read so far minus the delay), and one-minute tumbling windows over the rest.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone


@dataclass
class Expected:
    features: dict[str, dict] = field(default_factory=dict)  # tx_minute -> row
    dead_letter: list[tuple[str, str]] = field(default_factory=list)  # (line, reason)
    late: list[str] = field(default_factory=list)  # hashes
    duplicates: int = 0


def _as_int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _event_time(record: dict, future_tolerance_s: int) -> int:
    time = _as_int(record.get("time"))
    polled_at = record.get("polled_at")
    limit = (polled_at if isinstance(polled_at, (int, float)) else 1e18) + future_tolerance_s
    return time if time is not None and 0 < time <= limit else 0


def _reason(record, ts: int, future_tolerance_s: int) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    if record.get("heartbeat") is True:
        return None
    if not record.get("hash"):
        return "missing hash"
    if record.get("time") is None:
        return "missing time"
    if record.get("fee") is None:
        return "missing fee"
    fee = _as_int(record["fee"])
    if fee is None:
        return "fee is not an integer"
    if fee < 0:
        return "negative fee"
    if ts == 0:
        return f"time is not a unix time up to {future_tolerance_s} s after the poll"
    return None


def expected_results(lines: list[str], watermark_delay_s: int = 60, future_tolerance_s: int = 600) -> Expected:
    expected = Expected()
    seen: set[str] = set()
    watermark: int | None = None
    windows: dict[int, list[int]] = defaultdict(list)
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        ts = _event_time(record, future_tolerance_s) if isinstance(record, dict) else 0
        reason = _reason(record, ts, future_tolerance_s)
        if reason is not None:
            expected.dead_letter.append((line, reason))
        elif not record.get("heartbeat") is True:
            if record["hash"] in seen:
                expected.duplicates += 1
            else:
                seen.add(record["hash"])
                if watermark is not None and ts <= watermark:
                    expected.late.append(record["hash"])
                else:
                    windows[ts // 60 * 60].append(_as_int(record["fee"]))
        # The watermark follows the record that moved it (records first, then the watermark).
        candidate = ts - watermark_delay_s
        watermark = candidate if watermark is None else max(watermark, candidate)
    for start, fees in sorted(windows.items()):
        key = datetime.fromtimestamp(start, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        expected.features[key] = {
            "tx_minute": key,
            "event_time": float(start + 60),
            "total_nb_trx_1min": len(fees),
            "total_fee_1min": sum(fees),
            "avg_fee_1min": sum(fees) / len(fees),
        }
    return expected
