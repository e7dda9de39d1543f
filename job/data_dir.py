"""The layout of a chainfeat data dir (``./.chainfeat`` or ``--data-dir``): every path in one place.

The Flink job's own paths (feed, progress, checkpoints, dead letter, late) are the properties file's,
resolved against the data dir (job/config.py); their default names are the ones below.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def spool(self) -> Path:
        """The poller's output: one file of stream lines per poll (connectors/spool.py)."""
        return self.root / "spool"

    @property
    def feed(self) -> Path:
        """What the Flink job reads: the spool, published in order."""
        return self.root / "feed"

    @property
    def progress(self) -> Path:
        """The job's committed read progress on the feed."""
        return self.root / "progress"

    @property
    def archive(self) -> Path:
        """Live polls as received, a recording per hour (`chainfeat run --recording` replays one)."""
        return self.root / "archive"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def savepoints(self) -> Path:
        return self.root / "savepoints"

    @property
    def dead_letter(self) -> Path:
        return self.root / "dead_letter"

    @property
    def late(self) -> Path:
        return self.root / "late"

    @property
    def replay_state(self) -> Path:
        """How far a replay got (next poll, time shift), so that a restart resumes it."""
        return self.root / "poller" / "replay.json"

    @property
    def featurestore(self) -> Path:
        """The local feature store: online.sqlite3 and offline/<group>/... Parquet."""
        return self.root / "featurestore"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def run_state(self) -> list[Path]:
        """Everything a run leaves behind (what `chainfeat run --reset` deletes); the archive of live polls
        is kept: it cannot be polled again."""
        return [self.spool, self.feed, self.progress, self.checkpoints, self.savepoints, self.dead_letter,
                self.late, self.replay_state.parent, self.featurestore, self.logs]
