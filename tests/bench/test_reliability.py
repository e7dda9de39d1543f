"""The fast subset of bench/reliability.py (the full run's figures are in the README): Ctrl-C and resume, a store
outage that forces a job restart, and a fuzz corpus of 2,000 malformed pieces of every kind (kill -9 mid-stream:
tests/job/test_run.py)."""

from __future__ import annotations

import json

import pytest

from bench import reliability
from tests.support.fuzz import ENTRY_KINDS, LINE_KINDS

pytestmark = pytest.mark.slow


def test_interrupt_outage_and_fuzz_trials_are_exact(tmp_path, capsys) -> None:
    # A fixed window (the bench measures one undisturbed run by default): with seed 1 the Ctrl-C lands at 12 s, mid-run.
    code = reliability.main(["--kill-trials", "0", "--interrupt-trials", "1", "--kill-window-s", "90", "--outage-trials", "1",
                             "--outage-kinds", "drop", "--fuzz-lines", "2000", "--work-dir", str(tmp_path), "--format", "json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["all_exact"], [(trial["fault"], trial["detail"]) for trial in summary["trials"]]
    rows = {row["fault"]: row for row in summary["rows"]}
    assert set(rows) == {"Ctrl-C and resume", "store outage: drop", "fuzz (malformed input)"}
    assert all(row["exact"] == "1/1" and row["offline_rows_twice"] == 0 and row["hangs"] == 0
               and row["leftover_processes"] == 0 for row in rows.values())
    assert rows["store outage: drop"]["job_restarts"] >= 1
    fuzz = next(trial for trial in summary["trials"] if trial["fault"] == "fuzz (malformed input)")
    assert fuzz["injected"] == fuzz["dead_letter"] == 2000
    assert set(fuzz["injected_kinds"]) == set(ENTRY_KINDS) | set(LINE_KINDS) and len(fuzz["injected_kinds"]) >= 20
