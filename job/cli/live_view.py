"""The live views of `chainfeat run` and `chainfeat backfill`, refreshed every second on a terminal, or a compact
line every 10 s into logs and pipes."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from job.cli.output import shown, with_moment_shown

log = logging.getLogger(__name__)

_COUNTERS = (
    ("polls", "polls"),
    ("transactions", "transactions polled"),
    ("gaps", "gaps (missed transactions)"),
    ("poll_errors", "poll errors"),
    ("duplicates", "duplicates dropped"),
    # Sightings in seconds the watermark has not passed: the dedup tells their duplicates apart only then.
    ("awaiting_watermark", "sightings awaiting the watermark"),
    ("dead_letter", "dead-letter lines"),
    ("late", "late transactions"),
    ("records_online", "feature records (online)"),
    ("feature_store", "feature store"),
    ("store_retries", "feature-store retries"),
    ("job_restarts", "job restarts"),
    ("job_state", "Flink job"),
)


class LiveView:
    """A view refreshed while a command works: a table every second on a terminal (render()), else a compact line
    every 10 s into logs and pipes (line())."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.interactive = sys.stderr.isatty()

    def render(self) -> Any:
        raise NotImplementedError

    def line(self) -> str:
        raise NotImplementedError

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



class RunView(LiveView):
    """The live view of `chainfeat run`: its counters and the newest row of every feature group."""

    def __init__(self, local: Any, console: Console | None = None) -> None:
        super().__init__(console)
        self.local = local
        self._event_time_features: dict[str, str] | None = None

    def snapshot(self) -> tuple[dict[str, Any], dict[str, dict[str, Any] | None]]:
        """The run's counters and each group's newest row, its event time as ISO 8601 UTC."""
        counters = self.local.counters()
        try:
            if self._event_time_features is None:
                self._event_time_features = self.local.event_time_features()
            newest = {group: with_moment_shown(row, self._event_time_features[group]) if row else row
                      for group, row in self.local.newest_rows().items()}
        except Exception:  # the view must never stop the run
            newest = {}
        return counters, newest

    def render(self) -> Group:
        counters, newest = self.snapshot()
        table = Table(title=f"chainfeat run — Flink dashboard http://127.0.0.1:{self.local.dashboard_port}",
                      show_header=False)
        table.add_column("counter", style="bold")
        table.add_column("value", justify="right")
        for key, label in _COUNTERS:
            table.add_row(label, shown(counters.get(key, "")))
        tables = [table]
        for group, row in (newest or {"feature rows": None}).items():
            rows = Table(title=f"{group}: newest row", show_header=False)
            rows.add_column("feature", style="bold")
            rows.add_column("value")
            for name, value in (row or {"(none yet)": ""}).items():
                rows.add_row(name, str(value))
            tables.append(rows)
        return Group(*tables)

    def line(self) -> str:
        counters, newest = self.snapshot()
        parts = [f"{key}={shown(counters.get(key)).replace(' ', '')}" for key, _label in _COUNTERS]
        for group, row in newest.items():
            if row:
                parts.append(f"newest[{group}]={next(iter(row.values()))}")
        return " ".join(parts)

def staging_text(staging: Any) -> str:
    """An S3 archive's staging so far: objects and MiB in the cache of those in the range, and how many were there."""
    mib = 1 << 20
    return (f"{staging.cached_objects + staging.downloaded_objects}/{staging.objects} objects "
            f"{staging.done_bytes / mib:.1f}/{staging.bytes / mib:.1f} MiB ({staging.cached_objects} were cached)")


class BackfillView(LiveView):
    """The live view of `chainfeat backfill`: the batch job's state, a bar of its stages (Flink's vertices;
    a batch job reports no row counts while it reads, and Flink adds stages as it plans them), and the
    windows written so far per group (when the backfill runs the local store)."""

    def __init__(self, backfill: Any, console: Console | None = None) -> None:
        super().__init__(console)
        self.backfill = backfill

    def render(self) -> Table:
        status = self.backfill.status
        table = Table(title=f"chainfeat backfill — Flink dashboard {self.backfill.dashboard_url}",
                      show_header=False)
        table.add_column("what", style="bold")
        table.add_column("value")
        table.add_row("Flink job", status.state)
        if status.staging is not None:
            staging = status.staging
            # Bar and figures on rows of their own: a ProgressBar in a Group does not end its line.
            table.add_row("staged from S3", ProgressBar(total=max(staging.bytes, 1), completed=staging.done_bytes, width=40))
            table.add_row("", staging_text(staging))
        table.add_row("stages finished", Group(ProgressBar(total=max(status.stages, 1), completed=status.stages_finished,
                                                           width=40), f"{status.stages_finished} of {status.stages}"))
        table.add_row("elapsed", f"{time.monotonic() - self.backfill.timeline.started:.0f} s")
        if status.windows_written:
            table.add_row("windows written (online)", shown(status.windows_written))
        return table

    def line(self) -> str:
        status = self.backfill.status
        written = shown(status.windows_written).replace(" ", "") if status.windows_written else "-"
        staged = f"staged=[{staging_text(status.staging)}] " if status.staging is not None else ""
        return f"{staged}job={status.state} stages={status.stages_finished}/{status.stages} windows_written={written}"
