"""The live view of `chainfeat run`: counters and the newest feature row, refreshed every second on a
terminal, or a compact line every 10 s into logs and pipes."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any, Callable

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

log = logging.getLogger(__name__)

_COUNTERS = (
    ("polls", "polls"),
    ("transactions", "transactions polled"),
    ("gaps", "gaps (missed transactions)"),
    ("poll_errors", "poll errors"),
    ("duplicates", "duplicates dropped"),
    ("dead_letter", "dead-letter lines"),
    ("late", "late transactions"),
    ("windows_written", "feature rows (windows)"),
    ("job_state", "Flink job"),
)


class ProgressView:
    def __init__(self, local: Any, console: Console | None = None) -> None:
        self.local = local
        self.console = console or Console(stderr=True)
        self.interactive = sys.stderr.isatty()

    def snapshot(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        counters = self.local.counters()
        try:
            latest = self.local.latest_row()
        except Exception:  # the view must never stop the run
            latest = None
        return counters, latest

    def render(self) -> Group:
        counters, latest = self.snapshot()
        table = Table(title=f"chainfeat run — Flink dashboard http://127.0.0.1:{self.local.options.dashboard_port}",
                      show_header=False)
        table.add_column("counter", style="bold")
        table.add_column("value", justify="right")
        for key, label in _COUNTERS:
            table.add_row(label, str(counters.get(key, "")))
        newest = Table(title="newest feature row", show_header=False)
        newest.add_column("feature", style="bold")
        newest.add_column("value")
        for name, value in (latest or {"(none yet)": ""}).items():
            newest.add_row(name, str(value))
        return Group(table, newest)

    def line(self) -> str:
        counters, latest = self.snapshot()
        parts = [f"{key}={counters.get(key)}" for key, _label in _COUNTERS]
        if latest:
            parts.append(f"newest={latest.get('tx_minute')}")
        return " ".join(parts)

    def run(self, block: Callable[[], Any], stop: threading.Event) -> None:
        """Run ``block`` (it returns when the run is over) while the view refreshes in the background."""
        done = threading.Event()

        def refresh_loop(update: Callable[[], None], every_s: float) -> None:
            while not done.wait(every_s):
                try:
                    update()
                except Exception:  # noqa: BLE001 - a failed refresh is retried next tick
                    log.debug("progress refresh failed", exc_info=True)

        if self.interactive:
            with Live(console=self.console, refresh_per_second=2, transient=False) as live:
                updater = threading.Thread(
                    target=refresh_loop, args=(lambda: live.update(self.render()), 1.0), daemon=True
                )
                updater.start()
                try:
                    block()
                finally:
                    done.set()
                    updater.join(timeout=5)
        else:
            start = time.monotonic()
            updater = threading.Thread(
                target=refresh_loop,
                args=(lambda: print(f"[{time.monotonic() - start:6.0f}s] {self.line()}", file=sys.stderr,
                                    flush=True), 10.0),
                daemon=True,
            )
            updater.start()
            try:
                block()
            finally:
                done.set()
