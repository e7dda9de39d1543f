"""When each step of a run or a backfill happened, on one clock (time.monotonic): what their summaries report
as ``timeline_s`` and the benchmarks split into stages."""

from __future__ import annotations

import time


class Timeline:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self._moments: dict[str, float] = {}

    def start(self) -> None:
        """Count from now (steps marked before are forgotten)."""
        self.started = time.monotonic()
        self._moments.clear()

    def mark(self, step: str, moment: float | None = None) -> None:
        """``step`` was reached now, or at ``moment`` (a time.monotonic() reading)."""
        self._moments[step] = time.monotonic() if moment is None else moment

    def seconds(self) -> dict[str, float]:
        """Seconds from the start to each step reached, in the order they were reached."""
        ordered = sorted(self._moments.items(), key=lambda item: item[1])
        return {step: round(moment - self.started, 2) for step, moment in ordered}
