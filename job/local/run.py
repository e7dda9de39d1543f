"""`chainfeat run`: the local feature store, the poller, the feed publisher and the Flink job (MiniCluster),
wired together on one data dir. Watching the job is job/local/monitor.py's; the data dir's layout job/local/data_dir.py's.

Restarts: the job resumes from the newest savepoint or retained checkpoint in the data dir, and a replay
resumes from the poll it stopped at (same time shift). The feed publisher never lets the job have more than
one file it has not read and checkpointed (connectors/spool.py), so whatever restores the job — Flink
after a failure, or this run after a kill — the job re-reads at most that file, in order: results are the
same as without the restart. ``exit_when_done`` replays to the end, waits until the job has read and
checkpointed everything, then stops it with a draining savepoint: every window, the last one included, is
flushed.
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from connectors.atomic_files import atomic_write
from connectors.blockchain.poller import FanOut, Poller
from connectors.blockchain.source import BUNDLED_RECORDING, ArchiveWriter, LiveSource, Poll, ReplaySource
from connectors.featurestore.client import FeatureStoreClient
from connectors.featurestore.local.offline import offline_windows
from connectors.featurestore.local.process import StoreProcess
from connectors.featurestore.local.server import LocalFeatureStoreServer
from connectors.flink_rest import DEFAULT_REST_PORT, FlinkRest, FlinkRestError
from connectors.flink_sink_files import committed_files, sink_rows
from connectors.spool import FeedPublisher, ProgressLog, SpoolWriter
from job.flow.config import JobConfig, local_path
from job.flow.feature_groups import ensure_feature_groups
from job.flow.sql_files import feature_files
from job.flow.sql_pipeline import PROGRESS_ROLL_S
from job.local.data_dir import DataDir
from job.local.feature_store import StoreEndpoint, open_store
from job.local.jvm import start_local_flink
from job.local.minicluster import free_port, minicluster_settings, planning_from_this_thread, use_log_dir
from job.local.monitor import JobMonitor, RecentGrowth, innermost_cause
from job.local.timeline import Timeline
from job.timestamps import iso_utc
from udfs.coverage import Coverage, WindowShape

log = logging.getLogger(__name__)

DEFAULT_DASHBOARD_PORT = DEFAULT_REST_PORT


# How Flink says a checkpoint or savepoint holds state for an operator the submitted job does not have (a feature
# file removed or changed, or the job's own SQL changed by an upgrade): the job cannot resume from it.
UNMAPPABLE_STATE = ("Cannot map checkpoint/savepoint state",
                    "has been changed in a non-compatible way after the checkpoint/savepoint")  # e.g. max parallelism

# The live view shows the feature store as "unavailable, retrying" this long after the writers last retried.
STORE_RETRYING_SHOWN_S = 15.0


class PollSource(str, enum.Enum):
    """What a run or `chainfeat poll` polls: a recording replayed, or blockchain.com live."""

    replay = "replay"
    live = "live"


class RunError(RuntimeError):
    pass


class UsageError(RunError):
    """Options that cannot go together or name nothing (the CLI exits 2 for it, as for any wrong usage)."""


class Interrupted(RunError):
    """Ctrl-C (or SIGTERM) before a bounded run was done: the run stops with a savepoint, resumable."""


class WindowsMissing(RunError):
    """A drained job computed windows the feature store does not have: resuming cannot bring them back."""


class NothingNew(Exception):
    """A bounded replay whose job already read and flushed everything: there is nothing to run."""


@dataclass
class RunOptions:
    data_dir: Path
    source: PollSource = PollSource.replay
    recording: Path = BUNDLED_RECORDING
    speed: float = 1.0
    exit_when_done: bool = False
    dashboard_port: int = DEFAULT_DASHBOARD_PORT
    featurestore_port: int = 0
    properties: Path | None = None
    features: Path | None = None  # a directory of feature files instead of sql/features/


def latest_restore_point(savepoints: Path, checkpoints: Path) -> str | None:
    """The newest savepoint or completed retained checkpoint (a directory holding _metadata)."""
    candidates = [path.parent for path in savepoints.glob("*/_metadata")]
    candidates += [path.parent for path in checkpoints.glob("*/chk-*/_metadata")]
    if not candidates:
        return None
    return max(candidates, key=lambda path: path.stat().st_mtime).resolve().as_uri()


_DRAIN_MARK = "_drained.json"


def mark_drain(savepoints: Path) -> None:
    """Record that a drain was asked for: the next savepoint in ``savepoints`` is a drained one."""
    atomic_write(savepoints / _DRAIN_MARK, json.dumps({"requested_at": time.time()}).encode())


def drained_savepoint(savepoints: Path) -> str | None:
    """The newest savepoint, if it was taken by a drain (newer than the drain's mark)."""
    try:
        requested_at = json.loads((savepoints / _DRAIN_MARK).read_text())["requested_at"]
    except (FileNotFoundError, ValueError, KeyError):
        return None
    newest = max((path.parent for path in savepoints.glob("*/_metadata")), key=lambda p: p.stat().st_mtime, default=None)
    if newest is None or newest.stat().st_mtime < requested_at:
        return None
    return newest.resolve().as_uri()


def committed_lines(directory: Path) -> int:
    """Lines in the committed files of a Flink filesystem sink (in-progress files are hidden)."""
    total = 0
    for path in committed_files(directory):
        with open(path, "rb") as handle:
            total += sum(1 for _ in handle)
    return total


Window = tuple[str, float]  # a feature row as the job computed it: (record identifier, event time)


@dataclass(frozen=True)
class RunCoverage:
    """What a data dir's job covers completely (udfs/coverage.py) and each group's window, as the run that built the
    job saved them (DataDir.coverage): a finished run's summary counts its windows with them."""

    coverage: Coverage
    windows: dict[str, WindowShape | None]

    def save(self, path: Path) -> None:
        document = {"from": self.coverage.from_s, "to": self.coverage.to_s,
                    "windows": {name: asdict(shape) if shape else None for name, shape in self.windows.items()}}
        atomic_write(path, json.dumps(document).encode(), durable=False)

    @classmethod
    def load(cls, path: Path) -> RunCoverage | None:
        try:
            document = json.loads(path.read_text())
            return cls(Coverage(document["from"], document.get("to")),
                       {name: WindowShape(**shape) if shape else None for name, shape in document.get("windows", {}).items()})
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def complete(self, group: str, window: Window) -> bool:
        return bool(self.coverage.complete(self.windows.get(group), window[1]))


def _unmappable(error: Exception) -> bool:
    """Whether Flink refused a restore point because the job it was taken by is another (UNMAPPABLE_STATE)."""
    return any(marker in str(error) for marker in UNMAPPABLE_STATE)


def computed_windows(directory: Path) -> dict[str, set[Window]]:
    """The windows the job computed (its committed computed_windows rows, sql/sinks/computed.sql), per feature
    group: every (record identifier, event time), so an entity's every window, not only its newest."""
    computed: dict[str, set[Window]] = {}
    for path in committed_files(directory):
        for row in sink_rows(path):
            computed.setdefault(row["feature_group"], set()).add((row["record_identifier"], float(row["event_time"])))
    return computed


class ReplayState:
    """Where a replay is (next poll index, time origin), so that a restart resumes it. Saved at most every
    ``every_s`` and at the end: a replayed poll's spool file is named by its place in the recording, so
    polls replayed again after a crash rewrite their own files instead of adding new ones."""

    def __init__(self, path: Path, recording: Path, every_s: float = 0.5) -> None:
        self.path = path
        self.recording = str(recording.resolve())
        self.every_s = every_s
        self._saved_at = 0.0

    def load(self) -> tuple[int, float | None]:
        try:
            state = json.loads(self.path.read_text())
        except FileNotFoundError:
            return 0, None
        if state.get("recording") != self.recording:
            raise RunError(
                f"this data dir holds a replay of {state.get('recording')}; use another --data-dir "
                f"for {self.recording}, or --reset"
            )
        return int(state["next_poll"]), state.get("origin")

    def save(self, source: ReplaySource, force: bool = False) -> None:
        """Record that every poll before ``source.index`` is out (at most every ``every_s``)."""
        now = time.monotonic()
        if not force and now - self._saved_at < self.every_s:
            return
        self._saved_at = now
        self._write(source.index, source.origin)

    def save_after(self, poll: Poll, origin: float | None) -> None:
        """Record that every poll up to this one (a replayed poll: its key is its place) is on disk."""
        self._write(int(poll.key.removeprefix("r")) + 1, origin)

    def _write(self, next_poll: int, origin: float | None) -> None:
        state = {"recording": self.recording, "next_poll": next_poll, "origin": origin}
        # A crash, not a power loss, is what a replay must survive: the recording can be replayed again.
        atomic_write(self.path, json.dumps(state).encode(), durable=False)


SPOOL_BATCH_BYTES = 8 * 1024 * 1024  # a replay at speed 0 writes spool files of about this size
# How often the feed publisher looks whether the job has read and checkpointed its last publication: each
# publication waits for one, so a backlog is published in as many rounds as that takes (a look is one small read).
FEED_PUBLISH_INTERVAL_S = 0.2


def durable_spool(source: str) -> bool:
    """Whether the spool (and the feed made of it) is fsynced: live polls cannot be fetched again, a replay's can."""
    return source == "live"


def make_poller(data: DataDir, source: PollSource, recording: Path, speed: float, writer: Any = None,
                stop: threading.Event | None = None, interval_s: float = 15.0) -> Poller:
    """The poller of `chainfeat run` and `chainfeat poll`: a live source (every poll also appended to the
    data dir's raw archive), or a replay that resumes where the data dir's last replay stopped. ``writer``:
    where polls go; None is the data dir's spool (durable for live polls, in large files for a replay at
    speed 0)."""
    if source == "live":
        spool = writer or SpoolWriter(data.spool, durable=durable_spool(source))
        return Poller(LiveSource(), FanOut(spool, ArchiveWriter(data.archive)), interval_s, min(interval_s, 5.0))
    if not recording.exists():
        raise UsageError(f"recording {recording} not found")
    state = ReplayState(data.replay_state, recording)
    start, origin = state.load()
    replay = ReplaySource(recording, speed, start_index=start, origin=origin,
                          sleep=stop.wait if stop is not None else time.sleep)
    if writer is not None:  # e.g. Kinesis: a poll is out once written
        return Poller(replay, writer, on_poll=lambda _poll: state.save(replay),
                      on_finish=lambda: state.save(replay, force=True))
    spool = SpoolWriter(data.spool, durable=durable_spool(source), batch_bytes=SPOOL_BATCH_BYTES if speed == 0 else 0,
                        on_flush=lambda last: state.save_after(last, replay.origin))
    return Poller(replay, spool)


class LocalRun:
    def __init__(self, options: RunOptions) -> None:
        if options.source == "live" and options.exit_when_done:
            raise UsageError("--exit-when-done needs a replay: a live source never ends")
        self.options = options
        self.data = DataDir(options.data_dir.resolve())
        self.stop_event = threading.Event()
        self.store: StoreEndpoint | None = None
        self.client: FeatureStoreClient | None = None
        self.job_client: Any = None
        self.job_id = ""
        self.monitor: JobMonitor | None = None
        self.dashboard_port = options.dashboard_port or free_port()  # 0: any free port (its address is printed)
        self.rest = FlinkRest(f"http://127.0.0.1:{self.dashboard_port}")
        self.restored_from: str | None = None
        self.plan_loaded = False  # the job ran the compiled plan a run before cached (job/flow/plan_cache.py)
        self.savepoint: str | None = None
        self.feature_groups: list[str] = []
        self.added_groups: list[str] = []  # created by this run: their feature files are new
        self._held_windows: dict[str, tuple[list[Window], list[Window]]] | None = None  # the drained run's check
        self._partial_windows: dict[str, int] = {}  # read with _held_windows: the partial windows computed, per group
        self.coverage = RunCoverage(Coverage(), {})  # what the job covers completely (start() finds it)
        self.timeline = Timeline()
        self._threads: list[threading.Thread] = []
        self._store_retrying = RecentGrowth(STORE_RETRYING_SHOWN_S)
        self.config = JobConfig.load(options.properties, self.data.root, options.features)
        self.feed_dir = local_path(self.config.feed_uri)
        self.progress = ProgressLog(local_path(self.config.progress_uri), roll_s=PROGRESS_ROLL_S)
        self.poller = make_poller(self.data, options.source, options.recording, options.speed, stop=self.stop_event)
        # A bounded run's last publication closes every window (a heartbeat past its last poll by the watermark
        # delay): the job's counters are final while it still runs, before the drain (which would flush them too).
        self.closing_after_s = self.config.watermark_delay_s + 1
        self.publisher = FeedPublisher(self.data.spool, self.feed_dir, committed=self.progress.highest,
                                       request_checkpoint=self._request_checkpoint,
                                       input_ended=lambda: self.poller.stats.ran_out,
                                       closing_after_s=self.closing_after_s if options.exit_when_done else None,
                                       durable=durable_spool(options.source))

    # ---- wiring ------------------------------------------------------------------------------------

    def start(self, interrupted: threading.Event | None = None) -> None:
        """Start the feature store, build the job (a feature file Flink rejects stops the run here, before
        anything is polled or submitted), then start the poller, the job and the feed publisher. Raises
        NothingNew when a finished bounded replay is run again, and Interrupted when ``interrupted`` is set
        before the job is submitted (Ctrl-C during start-up: nothing was started that needs a savepoint)."""
        interrupted = interrupted or threading.Event()
        self.timeline.start()
        use_log_dir(self.data.logs)
        flink_started = start_local_flink()  # the JVM starts while the feature store does
        self._threads.append(flink_started)  # stop() waits for it, so a run that ends here leaves no JVM half started
        self.restored_from = latest_restore_point(self.data.savepoints, local_path(self.config.checkpoint_uri))
        feed_files = sorted(self.feed_dir.glob("feed-*.jsonl"))
        if not self.restored_from and len(feed_files) > 1:
            raise RunError(f"{self.feed_dir} holds {len(feed_files)} files but there is no checkpoint or savepoint "
                           "to resume from, so they would be read out of order; run again with --reset")

        self.coverage = RunCoverage(self._coverage(), {})
        # A run owns the data dir's store (a server already serving it makes this start fail, by name).
        self.store = open_store(self.data.featurestore, self.config.featurestore_endpoint_url,
                                port=self.options.featurestore_port, join_running=False, own_process=True)
        endpoint = self.store.url
        self.client = self.store.client(self.config.featurestore_region)
        self._refuse_a_finished_job()

        flink_started.join()
        from job.flow.pipeline import build_pipeline  # imports pyflink: keep it off the CLI's start-up path

        extra = {"execution.checkpointing.savepoint-dir": self.data.savepoints.resolve().as_uri(),
                 **minicluster_settings(), **self.config.extra_flink_config}
        stored = set(self.client.group_names())
        config = replace(self.config, featurestore_endpoint_url=endpoint, restore_from=self.restored_from,
                         extra_flink_config=extra, coverage=self.coverage.coverage, new_feature_groups=tuple(
                             path.stem for path in feature_files(self.config.features_dir) if path.stem not in stored))
        with planning_from_this_thread():  # the job is planned from this thread only (FLINK-23020)
            pipeline = build_pipeline(config, rest_port=self.dashboard_port)
            self.timeline.mark("job_built")
            if interrupted.is_set():
                raise Interrupted("interrupted while the job was being built; nothing was submitted")
            self.feature_groups = [definition.name for definition in pipeline.feature_groups]
            self.coverage = RunCoverage(self.coverage.coverage, dict(pipeline.window_shapes))
            self.coverage.save(self.data.coverage)
            if self.restored_from:
                self._refuse_grown_features(pipeline.feature_groups)
            # Adds new columns, refuses removed or retyped ones; a group created now is one a feature file added.
            self.added_groups = ensure_feature_groups(self.client, pipeline.feature_groups)

            self._spawn(self.poller.run, self.stop_event, name="poller")  # a replay fills the spool while the job starts
            self._submit(pipeline)
        self.plan_loaded = pipeline.plan_loaded
        self.timeline.mark("job_submitted")
        self.job_id = str(self.job_client.get_job_id())
        self.monitor = JobMonitor(self.rest, self.job_id, self.job_client)
        self._spawn(self.publisher.run, self.stop_event, FEED_PUBLISH_INTERVAL_S, name="publisher")

    def _submit(self, pipeline: Any) -> None:
        """Submit the job; Flink's refusal is one RunError line (the whole chain in the data dir's logs)."""
        try:
            self.job_client = pipeline.execute_async("chainfeat")
        except Exception as error:  # py4j hands over the JobMaster's error as text
            if self.restored_from and _unmappable(error) and self.added_groups:
                added = ", ".join(self.added_groups)
                raise RunError(
                    f"{added}: feature file(s) added since the job state this run would resume from was taken "
                    f"({self.restored_from}), and Flink cannot add a group to a job's state. Run again with --reset-job "
                    "to compute every group from the start (the feature store keeps its data), or take the file(s) "
                    "out until this replay is done and fill the group(s) then with `chainfeat backfill --group NAME`"
                ) from None
            if self.restored_from and _unmappable(error):
                raise RunError(
                    f"the job state this run would resume from ({self.restored_from}) was taken by a different job: "
                    "a feature file was removed or changed, or the job's own SQL changed with an upgrade, and Flink "
                    "cannot map that state onto this job. Undo the change to resume, or run again with --reset-job "
                    "to recompute from the start: the feature store keeps its data") from None
            # Any other refusal: one line with Flink's innermost cause; the whole chain goes to a file.
            atomic_write(self.data.submit_error, traceback.format_exc().encode(), durable=False)
            cause = innermost_cause(str(error))
            if self.restored_from:
                raise RunError(
                    f"the job could not start from {self.restored_from} ({cause}): if that restore point is damaged, "
                    "run again with --reset-job to recompute from the start (the feature store keeps its data). "
                    f"The whole error: {self.data.submit_error}") from None
            raise RunError(f"the job could not start ({cause}). The whole error: {self.data.submit_error}") from None

    def _refuse_grown_features(self, groups: list[Any]) -> None:
        """A feature file that gained columns since the job state was taken: Flink cannot restore window state
        into the changed query (StateMigrationException), so stop before the feature group changes."""
        for definition in groups:
            if self.client.exists(definition.name):
                added = self.client.describe(definition.name, fresh=True).change_to(definition).additions
                if added:
                    raise RunError(
                        f"{definition.name} gained {', '.join(added)} since the job state this run would resume from "
                        f"was taken ({self.restored_from}); Flink cannot restore a job's windows into a changed query. "
                        "Undo the change to resume, or run again with --reset-job to recompute from the start: the "
                        "group then gains the columns and keeps its data")

    def _coverage(self) -> Coverage:
        """What this data dir's polls cover completely: from the first poll its job read (a replay's first poll; a live
        run's start, kept from the first run on) to, for a replay, its last poll minus the watermark delay."""
        source = self.poller.source
        replay = source if isinstance(source, ReplaySource) else None
        if replay is not None:
            replay.start_now()  # its time shift, known before the job is built
        saved = RunCoverage.load(self.data.coverage)
        if replay is not None:
            first: float | None = replay.first_poll_time
        elif saved is not None:
            first = saved.coverage.from_s
        else:  # a live job started before its start was kept covers from where it resumes: not known
            first = None if self.restored_from else time.time()
        last = replay.last_poll_time() - self.config.watermark_delay_s if replay is not None else None
        return Coverage(first, last)

    def _refuse_a_finished_job(self) -> None:
        """A job stopped by --exit-when-done was drained: every window is written and it takes no more input.
        Running the same replay again has nothing to do; anything new needs a fresh data dir."""
        drained = drained_savepoint(self.data.savepoints)
        if drained is None or drained != self.restored_from:
            return
        source = self.poller.source
        if isinstance(source, ReplaySource) and source.done and not self.publisher.has_backlog():
            assert self.client is not None
            names = [path.stem for path in feature_files(self.config.features_dir)]
            self.feature_groups = [name for name in names if self.client.exists(name)]
            self.coverage = RunCoverage.load(self.data.coverage) or self.coverage  # the finished job's windows
            added = [name for name in names if name not in self.feature_groups]
            # A feature file added since the replay ended: the drained job will not compute it; the archive can.
            command = ["chainfeat", "backfill", "--data-dir", str(self.options.data_dir),
                       *(["--features", str(self.options.features)] if self.options.features else []),
                       *(part for name in added for part in ("--group", name))]
            fill = (f"; {', '.join(added)} {'is' if len(added) == 1 else 'are'} new: fill "
                    f"{'it' if len(added) == 1 else 'them'} from what was replayed with `{' '.join(command)}`"
                    if added else "")
            raise NothingNew(f"nothing new to replay: {self.options.recording.name} was replayed to the end and "
                             f"every window written (savepoint {drained}){fill}")
        raise RunError(f"the job of {self.data.root} was finished by --exit-when-done (savepoint {drained}): its "
                       "windows are written and it takes no more input; use --reset, or another --data-dir")

    def _spawn(self, target: Any, *args: Any, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _request_checkpoint(self) -> None:
        """Ask for a checkpoint when the job has read a feed file and its progress waits for one."""
        if self.monitor is not None and self.progress.awaiting_checkpoint():
            self.monitor.request_checkpoint()

    @property
    def server(self) -> LocalFeatureStoreServer | StoreProcess | None:
        """The data dir's local store, when this run started it (not when it writes to another endpoint)."""
        return self.store.server if self.store is not None else None

    def resume_point(self) -> str | None:
        """What running the same command again would resume from."""
        return latest_restore_point(self.data.savepoints, local_path(self.config.checkpoint_uri))

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}/#/job/running/{self.job_id}/overview"

    # ---- progress ----------------------------------------------------------------------------------

    def job_state(self) -> str:
        return self.monitor.state() if self.monitor else "NOT STARTED"

    def counters(self) -> dict[str, Any]:
        poller = self.poller.stats.snapshot()
        store_retries = self.monitor.store_retries() if self.monitor else 0
        retrying = self._store_retrying.update(store_retries, time.monotonic())
        return {
            "polls": poller["polls"],
            "transactions": poller["transactions"],
            "gaps": poller["gaps"],
            "poll_errors": poller["errors"],
            "duplicates": self.monitor.duplicates() if self.monitor else 0,
            "awaiting_watermark": self.monitor.awaiting_watermark() if self.monitor else 0,  # read with duplicates
            "dead_letter": committed_lines(local_path(self.config.dead_letter_uri)),
            "late": committed_lines(local_path(self.config.late_uri)),
            "records_online": self.records_online(),
            "feature_store": "unavailable, retrying" if retrying else "ok",
            "store_retries": store_retries,
            "job_restarts": self.monitor.restarts() if self.monitor else 0,
            "job_state": self.job_state(),
            "restored_from": self.restored_from,
        }

    def records_online(self) -> dict[str, int]:
        """Online records per feature group (one per record identifier: a per-entity group has one per entity)."""
        if self.server is not None:
            return {group: self.server.online_count(group) for group in self.feature_groups}
        assert self.client is not None
        return {group: len(self.client.list_record_identifiers(group)) for group in self.feature_groups}

    def newest_rows(self) -> dict[str, dict[str, Any] | None]:
        """The online record with the newest event time, per feature group."""
        assert self.client is not None
        if self.server is None:
            return {group: self.client.newest_record(group) for group in self.feature_groups}
        newest = {}
        for group in self.feature_groups:
            record_id = self.server.newest_record_id(group)
            newest[group] = self.client.get_record(group, record_id) if record_id else None
        return newest

    def event_time_features(self) -> dict[str, str]:
        """Each feature group's event-time feature (the views show it as a moment)."""
        assert self.client is not None
        return {group: self.client.describe(group).event_time_feature for group in self.feature_groups}

    # ---- endings -----------------------------------------------------------------------------------

    def wait_until_done(self, interrupted: threading.Event | None = None, timeout_s: float = 3600) -> None:
        """For exit_when_done: wait for the replay to end and the job to read and checkpoint all of it
        (asking for checkpoints meanwhile), then stop it with a draining savepoint."""
        deadline = time.monotonic() + timeout_s
        interrupted = interrupted or threading.Event()
        while not self.poller.stats.finished or self.publisher.has_backlog():
            self._tick(deadline, interrupted, "the replay to be published")
        self._wait_for_the_job_to_read(deadline, interrupted)
        self.timeline.mark("all_read")
        last_poll = self.publisher.last_poll_time()
        if last_poll is not None and not self.publisher.closed:  # the last file was published before the replay ended
            self.publisher.publish_heartbeat(last_poll + self.closing_after_s)
            self._wait_for_the_job_to_read(deadline, interrupted)
        assert self.monitor is not None
        self.monitor.settled_duplicates()
        self.monitor.restarts()  # read while the job still reports it
        mark_drain(self.data.savepoints)
        self.savepoint = self.monitor.stop_with_savepoint(self.data.savepoints.resolve().as_uri(), drain=True)
        self.monitor.wait_for_end(deadline)
        self.timeline.mark("ended")
        self._check_every_window_written()

    def _check_every_window_written(self) -> None:
        """A drained job has committed every window it computed: each must be in the feature store, or the run fails
        instead of exiting 0."""
        self._held_windows = self._windows_in_store()
        missing = {group: lost for group, (_found, lost) in self._held_windows.items() if lost}
        if missing:
            detail = "; ".join(f"{group}: {len(lost)} (first {lost[0][0]} at {lost[0][1]:g})"
                               for group, lost in missing.items())
            raise WindowsMissing(f"windows the job computed are not in the feature store: {detail}. The store lost "
                                 "writes it had acknowledged; check it (chainfeat latest), then replay with --reset")

    def _windows_in_store(self) -> dict[str, tuple[list[Window], list[Window]]]:
        """Per feature group, the windows the job computed that the store has and those it lacks. The local store
        answers for every window (its offline store holds each one); another store for each record identifier's
        newest (its online record at that event time or newer), since its offline store is not at hand."""
        assert self.client is not None
        found: dict[str, tuple[list[Window], list[Window]]] = {}
        if self.server is not None:
            self.server.flush_offline()
        computed = computed_windows(self.data.computed)
        for group in self.feature_groups:  # the run's groups (a group deleted since has no description to read)
            windows = {window for window in computed.get(group, set()) if self.coverage.complete(group, window)}
            self._partial_windows[group] = len(computed.get(group, set())) - len(windows)
            definition = self.client.describe(group)
            if self.server is not None:
                held = set(offline_windows(self.data.featurestore, definition))
            else:
                newest: dict[str, float] = {}
                for key, moment in windows:
                    newest[key] = max(moment, newest.get(key, moment))
                online = {str(record[definition.record_identifier]): float(record[definition.event_time_feature])
                          for record in self.client.get_records(group, sorted(newest))}
                held = {(key, moment) for key, moment in windows if online.get(key, float("-inf")) >= newest[key]}
            found[group] = (sorted(windows & held), sorted(windows - held))
        return found

    def _held(self) -> dict[str, tuple[list[Window], list[Window]]]:
        """_windows_in_store, read once for the summary (a drained run's check has read it already)."""
        if self._held_windows is None:
            self._held_windows = self._windows_in_store()
        return self._held_windows

    def windows_computed(self) -> dict[str, int]:
        """Complete windows the job computed and committed, per feature group: every (record identifier, event time)."""
        return {group: len(found) + len(lost) for group, (found, lost) in self._held().items()}

    def windows_skipped_partial(self) -> dict[str, int]:
        """Windows the job computed that the polls cover only in part (at their edges), not written, per group."""
        self._held()  # the computed windows are read once, with the store's
        return {group: self._partial_windows.get(group, 0) for group in self.feature_groups}

    def window_summary(self) -> dict[str, Any]:
        """The summary's windows: computed (complete), written, skipped as partial, each group's window, and the
        coverage they follow (UTC)."""
        return {"windows_computed": self.windows_computed(), "windows_written": self.windows_written(),
                "windows_skipped_partial": self.windows_skipped_partial(),
                "window_shapes": {group: shape.describe() if (shape := self.coverage.windows.get(group)) else ""
                                  for group in self.feature_groups},
                "covered_from": iso_utc(self.coverage.coverage.from_s), "covered_to": iso_utc(self.coverage.coverage.to_s)}

    def windows_written(self) -> dict[str, int]:
        """Of the windows the job computed, those the feature store holds, per feature group."""
        return {group: len(found) for group, (found, _lost) in self._held().items()}

    def _wait_for_the_job_to_read(self, deadline: float, interrupted: threading.Event) -> None:
        while not self.publisher.read_by_job():
            self._request_checkpoint()
            self._tick(deadline, interrupted, "the job to read the whole feed")

    def timeline_seconds(self) -> dict[str, float]:
        """Seconds from the start of the run to each step reached: job built (JVM + plan), submitted
        (planned, cluster up), replay finished, everything read and checkpointed, job ended (drained)."""
        if self.poller.stats.finished_at:
            self.timeline.mark("replay_finished", self.poller.stats.finished_at)
        return self.timeline.seconds()

    def _tick(self, deadline: float, interrupted: threading.Event, waiting_for: str) -> None:
        if interrupted.is_set():
            raise Interrupted("interrupted before the replay was done")
        if self.poller.stats.fatal_error:
            raise RunError(self.poller.stats.fatal_error)
        if time.monotonic() > deadline:
            raise RunError(f"gave up waiting for {waiting_for}; see the Flink logs in {self.data.logs}")
        state = self.job_state()
        if state == "FAILED":
            assert self.monitor is not None
            raise RunError(f"the Flink job failed ({self.monitor.failure_cause()}); its windows after the last "
                           f"checkpoint are not written. Logs: {self.data.logs}")
        if state in ("CANCELED", "ENDED"):
            raise RunError(f"the Flink job ended ({state}) before it read everything; logs: {self.data.logs}")
        interrupted.wait(0.2)

    def stop(self) -> str | None:
        """Stop polling and publishing (what was spooled but not published is published on the next start),
        stop the job with a savepoint (resumable), stop the feature store. Idempotent."""
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=30)
        savepoint = None
        if self.monitor is not None and self.job_state() in ("RUNNING", "CREATED", "INITIALIZING", "RESTARTING"):
            try:
                savepoint = self.monitor.stop_with_savepoint(self.data.savepoints.resolve().as_uri(), drain=False)
            except FlinkRestError as error:
                log.warning("stop with savepoint failed (%s); cancelling (the last checkpoint is kept)", error)
                self.job_client.cancel().result()
        if self.store is not None:
            self.store.stop()
        return savepoint
