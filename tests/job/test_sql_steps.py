"""Each SQL step alone on a few rows (tests/support/sql_step.py): what goes in, what comes out."""

from __future__ import annotations

import pytest

from job.flow.sql_files import SQL_DIR
from tests.support import T0
from tests.support.sql_step import run_step

pytestmark = pytest.mark.slow

COLUMNS = ("hash", "ver", "vin_sz", "vout_sz", "size", "weight", "fee", "relayed_by", "lock_time", "tx_index",
           "double_spend", "time", "block_index", "block_height", "rbf", "input_count", "output_count", "polled_at")


def sighting(tx_hash: str, offset_s: int, polled_offset_s: int, **fields) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update({"hash": tx_hash, "time": T0 + offset_s, "fee": 100, "size": 250, "relayed_by": "0.0.0.0",
                "rbf": False, "input_count": 1, "output_count": 2, "polled_at": float(T0 + polled_offset_s)})
    row.update(fields)
    return row


def test_dedup_keeps_each_hash_once_with_every_column(tmp_path) -> None:
    rows = [
        sighting("A", 5, 20, fee=300, relayed_by="127.0.0.1", ver=2, weight=900, block_height=None),
        sighting("B", 10, 20, size=400, double_spend=True),
        sighting("A", 5, 35, fee=300, relayed_by="127.0.0.1", ver=2, weight=900),  # re-polled
        sighting("C", 61, 70, lock_time=840000, tx_index=7, vin_sz=3, vout_sz=4),
        sighting("B", 10, 70, size=400, double_spend=True),  # re-polled a poll later
    ]
    unique = run_step(rows, [SQL_DIR / "lateness.sql", SQL_DIR / "dedup.sql"], "unique_transactions", tmp_path)

    first_sightings: dict[str, dict] = {}
    for row in rows:
        first_sightings.setdefault(row["hash"], row)
    by_hash = {row["hash"]: row for row in unique}
    assert len(unique) == len(by_hash) == 3
    assert {h: {k: v for k, v in row.items() if k != "ts"} for h, row in by_hash.items()} == first_sightings
    assert {h: row["ts"] for h, row in by_hash.items()} == {"A": T0 + 5, "B": T0 + 10, "C": T0 + 61}


def test_inputs_and_outputs_are_one_row_per_entry_of_each_transaction_once(tmp_path) -> None:
    spent, paid = [{"address": "in-1", "value": 10}], [{"address": "out-1", "value": 7}, {"address": None, "value": 2}]
    rows = [
        sighting("A", 5, 20, inputs=spent, outputs=paid),
        sighting("B", 10, 20, inputs=[], outputs=[{"address": "out-1", "value": 5}, {}]),  # {}: neither known
        sighting("A", 5, 35, inputs=spent, outputs=paid),  # re-polled
        sighting("C", 61, 70),  # no lists (a line without them)
    ]
    steps = [SQL_DIR / "lateness.sql", SQL_DIR / "inputs_outputs.sql"]
    outputs = run_step(rows, steps, "unique_outputs", tmp_path / "outputs")
    inputs = run_step(rows, steps, "unique_inputs", tmp_path / "inputs")

    def entry(tx_hash: str, position: int, address: str | None, value: int | None, offset_s: int) -> dict:
        return {"hash": tx_hash, "position": position, "address": address, "value": value, "time": T0 + offset_s,
                "polled_at": float(T0 + 20), "ts": T0 + offset_s}

    def by_place(found: list[dict]) -> list[dict]:
        return sorted(found, key=lambda row: (row["hash"], row["position"]))

    assert by_place(outputs) == [entry("A", 0, "out-1", 7, 5), entry("A", 1, None, 2, 5), entry("B", 0, "out-1", 5, 10),
                                 entry("B", 1, None, None, 10)]
    assert inputs == [entry("A", 0, "in-1", 10, 5)]
