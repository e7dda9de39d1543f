"""The layout of a chainfeat data dir (``./.chainfeat`` or ``--data-dir``): every path in one place.

The Flink job's own paths (feed, progress, checkpoints, dead letter, late) are named by the properties file
(job/flow/application_properties.json) and resolved against the data dir; the ones here are its defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from connectors.featurestore.local import STORE_DIR
from job.flow.backfill import REPORT_DEAD_LETTER, REPORT_FACTS, REPORT_WINDOWS
from job.flow.config import default_property_groups

DEFAULT_DATA_DIR = Path(".chainfeat")  # relative to where chainfeat runs (--data-dir, CHAINFEAT_DATA_DIR)


@dataclass(frozen=True)
class DataDir:
    root: Path

    def _job_path(self, group: str, key: str) -> Path:
        return self.root / default_property_groups()[group][key]

    @property
    def spool(self) -> Path:
        """The poller's output: one file of stream lines per poll (connectors/spool.py)."""
        return self.root / "spool"

    @property
    def feed(self) -> Path:
        """What the Flink job reads: the spool, published in order."""
        return self._job_path("Source", "feed.path")

    @property
    def progress(self) -> Path:
        """The job's committed read progress on the feed."""
        return self._job_path("Source", "progress.path")

    @property
    def computed(self) -> Path:
        """The windows the job computed (feature group, record identifier, event time), committed with its
        checkpoints: what a bounded run checks the feature store against before it exits 0."""
        return self._job_path("Source", "computed.path")

    @property
    def archive(self) -> Path:
        """Live polls as received, a recording per hour (`chainfeat run --recording` replays one)."""
        return self.root / "archive"

    @property
    def checkpoints(self) -> Path:
        return self._job_path("Job", "checkpoint.path")

    @property
    def savepoints(self) -> Path:
        return self.root / "savepoints"

    @property
    def dead_letter(self) -> Path:
        return self._job_path("Outputs", "dead.letter.path")

    @property
    def late(self) -> Path:
        return self._job_path("Outputs", "late.path")

    @property
    def replay_state(self) -> Path:
        """How far a replay got (next poll, time shift), so that a restart resumes it."""
        return self.root / "poller" / "replay.json"

    @property
    def coverage(self) -> Path:
        """Since when the job's windows are complete: the first poll it read (udfs/coverage.py)."""
        return self.root / "poller" / "coverage.json"

    @property
    def featurestore(self) -> Path:
        """The local feature store: online.sqlite3 and offline/<group>/... Parquet."""
        return self.root / STORE_DIR

    @property
    def archive_cache(self) -> Path:
        """The S3 archive's objects a backfill staged (connectors/s3_archive.py), under <bucket>/<prefix>/: kept
        between backfills (and by `chainfeat run --reset`) so that no object is downloaded twice; delete it to
        free the space."""
        return self.root / "archive-cache"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def submit_error(self) -> Path:
        """The whole error (Python and Java) of the last run whose job Flink refused to start."""
        return self.logs / "job-submit-error.txt"

    @property
    def backfill(self) -> Path:
        """What the last `chainfeat backfill` reported (each backfill replaces it): the subdirectories below."""
        return self._job_path("Backfill", "report.path")

    @property
    def backfill_windows(self) -> Path:
        """Every window the last backfill computed (feature group, record identifier, event time) and whether it
        was complete (written) or partial (skipped)."""
        return self.backfill / REPORT_WINDOWS

    @property
    def backfill_facts(self) -> Path:
        """The last backfill's counts (lines, transactions, dead letter, ...) and the archive's coverage."""
        return self.backfill / REPORT_FACTS

    @property
    def backfill_dead_letter(self) -> Path:
        """The last backfill's dead letter (the streaming job wrote the same lines to dead_letter/ already)."""
        return self.backfill / REPORT_DEAD_LETTER

    @property
    def backfill_properties(self) -> Path:
        """The properties a backfill on a cluster was submitted with (its Backfill group filled in)."""
        return self.backfill / "properties.json"

    def job_state(self) -> list[Path]:
        """What a run leaves behind but the feature store (what `chainfeat run --reset-job` deletes: the job then
        recomputes everything from the start and writes into the groups it has)."""
        return [self.spool, self.feed, self.progress, self.computed, self.checkpoints, self.savepoints, self.dead_letter,
                self.late, self.replay_state.parent, self.logs, self.backfill]

    def run_state(self) -> list[Path]:
        """Everything a run leaves behind (what `chainfeat run --reset` deletes); the archive of live polls
        is kept: it cannot be polled again."""
        return [*self.job_state(), self.featurestore]
