"""Which windows the data covers completely: the one rule the stream and the backfill share.

The polls cover [from, to): from the first poll (a window starting earlier holds only the transactions that were
still unconfirmed then) to the last poll minus the watermark delay (a transaction shows up to that long after its
time, so a window ending later would still have grown). A window [start, end) is complete if from <= start and
end <= to, and only complete windows are written: the streaming job's writer (udfs/feature_store_writer.py) skips
the others, and the backfill (job/flow/backfill.py) filters them out in its plan. Either end may be open (None).

A window's start derives from its end (the feature row's event time) and its shape, which Flink's optimized plan of
the feature view states (job/flow/window_shapes.py): nothing to declare twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WindowShape:
    """A feature view's window, as Flink's plan states it: a window ending at ``end`` starts at ``start(end)``."""

    kind: str  # TUMBLE, HOP or CUMULATE
    size_s: float  # TUMBLE/HOP size, CUMULATE max size
    step_s: float  # HOP slide, CUMULATE step (TUMBLE: its size)
    offset_s: float = 0.0

    def start(self, end: Any) -> Any:
        """The window start for a window end (a number, a pandas Series, or a Table API expression of one)."""
        if self.kind != "CUMULATE":
            return end - self.size_s
        # A cumulating window starts at the max-size boundary before its first step.
        steps = (end - self.step_s - self.offset_s) / self.size_s
        if isinstance(steps, (int, float)):
            whole: Any = math.floor(steps)
        else:  # a Table API expression has floor(), a pandas Series floor division
            whole = steps.floor() if hasattr(steps, "floor") else steps // 1
        return whole * self.size_s + self.offset_s

    def describe(self) -> str:
        if self.kind == "TUMBLE":
            return f"TUMBLE {_seconds(self.size_s)}"
        return f"{self.kind} {_seconds(self.size_s)} {'every' if self.kind == 'HOP' else 'by'} {_seconds(self.step_s)}"


def _seconds(value: float) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if value >= size and value % size == 0:
            return f"{value / size:g} {unit}"
    return f"{value:g} s"


@dataclass(frozen=True)
class Coverage:
    """What the polls cover completely, in unix seconds (None: open at that end)."""

    from_s: float | None = None
    to_s: float | None = None

    @property
    def bounded(self) -> bool:
        return self.from_s is not None or self.to_s is not None

    def complete(self, shape: WindowShape | None, end: Any) -> Any:
        """Whether the window ending at ``end`` (a number or a pandas Series of them) is complete. Without a shape
        (a view that is not one window) every window counts as complete."""
        if shape is None:
            return True
        return inside(shape, end, -math.inf if self.from_s is None else self.from_s,
                      math.inf if self.to_s is None else self.to_s)


def inside(shape: WindowShape, end: Any, from_s: Any, to_s: Any) -> Any:
    """The rule itself: the window of ``shape`` ending at ``end`` lies inside [from_s, to_s). Numbers, pandas
    Series or Table API expressions (the backfill's coverage is a column of its plan)."""
    return (shape.start(end) >= from_s) & (end <= to_s)
