"""The pipeline's commands: run it here, poll or record the API, backfill the history, and prepare this machine
for fast local runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from connectors import DEFAULT_REGION
from connectors.blockchain.poller import Poller
from connectors.blockchain.source import LIVE_URL, LiveSource, RecordingError, RecordingWriter
from connectors.featurestore.client import FeatureStoreError
from connectors.featurestore.local.server import DEFAULT_PORT, FeatureStoreLocked
from connectors.flink_rest import DEFAULT_REST_PORT, FlinkRestError
from connectors.kinesis.producer import KinesisConfig, KinesisWriteError, KinesisWriter
from job.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    DataDirOption,
    EndpointUrl,
    FeaturesDir,
    Format,
    Properties,
    RecordingPath,
    Sink,
    Speed,
    fail,
    stop_on_signals,
)
from job.cli.live_view import BackfillView, RunView
from job.cli.output import OutputFormat, render_record, render_rows, with_moment_shown
from job.deploy.package import DEFAULT_ZIP
from job.flow.backfill import BackfillError, TimeRange, UnknownGroup, parse_moment
from job.flow.config import ConfigError
from job.local.backfill import Backfill, BackfillInterrupted, BackfillOptions
from job.local.data_dir import DataDir
from job.local.jvm import ClassArchiveError, archive_path, build_class_archive, use_planner_lib
from job.local.run import (
    DEFAULT_DASHBOARD_PORT,
    Interrupted,
    LocalRun,
    NothingNew,
    PollSource,
    RunError,
    RunOptions,
    UsageError,
    WindowsMissing,
    make_poller,
)


def run(
    data_dir: Path = DataDirOption,
    source: PollSource = typer.Option(PollSource.replay, help="replay (a recording) or live (blockchain.com)."),
    recording: Path = RecordingPath,
    speed: float = Speed,
    exit_when_done: bool = typer.Option(False, "--exit-when-done", help="Replay to the end, flush every window, print a summary, exit."),
    fmt: OutputFormat = Format,
    dashboard_port: int = typer.Option(DEFAULT_DASHBOARD_PORT, help="Port of the Flink dashboard (binds 127.0.0.1; 0: any free port)."),
    featurestore_port: int = typer.Option(DEFAULT_PORT, help="Port of the local feature store (0: any free port)."),
    properties: Path | None = Properties,
    features: Path | None = FeaturesDir,
    reset: bool = typer.Option(False, "--reset", help="Delete this data dir's previous run (spool, job state, features) first."),
    reset_job: bool = typer.Option(
        False, "--reset-job", help="Delete the previous run's job state and spool but keep the feature store: the job "
                                   "recomputes from the start (e.g. after a feature file gained columns)."),
) -> None:
    """Run the whole pipeline locally: feature store, poller, and the Flink job in a MiniCluster.

    Example: chainfeat run --speed 0 --exit-when-done --format json
    """
    if reset or reset_job:
        for path in DataDir(data_dir).run_state() if reset else DataDir(data_dir).job_state():
            shutil.rmtree(path, ignore_errors=True)
    options = RunOptions(
        data_dir=data_dir, source=source, recording=recording, speed=speed, exit_when_done=exit_when_done,
        dashboard_port=dashboard_port, featurestore_port=featurestore_port, properties=properties, features=features,
    )
    try:
        local = LocalRun(options)
    except UsageError as error:
        raise fail(str(error), EXIT_USAGE) from None
    except (RunError, ConfigError, RecordingError, ValueError) as error:
        raise fail(str(error)) from None
    typer.echo(f"starting chainfeat on {data_dir} (source: {source.value}"
               f"{f', {recording.name} at speed {speed:g}' if source is PollSource.replay else ''})...", err=True)
    # From here on Ctrl-C/SIGTERM only set `stop`: during start-up the run stops before it submits the job,
    # afterwards with a savepoint; never a KeyboardInterrupt in the middle of a call into the JVM.
    with stop_on_signals() as stop:
        try:
            local.start(interrupted=stop)
        except NothingNew as done:
            typer.echo(str(done), err=True)
            summary = {**local.counters(), **local.window_summary(), "job_state": "FINISHED", "newest_rows": local.newest_rows(),
                       "savepoint": local.restored_from, "data_dir": str(data_dir)}
            event_times = local.event_time_features()
            local.stop()
            _print_run_summary(summary, event_times, fmt)
            return
        except Interrupted as error:
            local.stop()
            raise fail(f"{error}; run the same command to start again", EXIT_INTERRUPTED) from None
        except (FeatureStoreLocked, OSError, RunError, FeatureStoreError, ValueError) as error:
            local.stop()  # FeatureFileError (a ValueError) names the feature file, line and column
            raise fail(str(error)) from None
        typer.echo(f"Flink dashboard: {local.dashboard_url}", err=True)
        if local.restored_from:
            typer.echo(f"resumed from {local.restored_from}", err=True)
        view = RunView(local)
        failure: Exception | None = None
        try:
            if exit_when_done:
                view.run(lambda: local.wait_until_done(interrupted=stop), stop)
            else:
                view.run(stop.wait, stop)
            final = {**local.counters(), **local.window_summary()}
            newest = local.newest_rows()
            event_times = local.event_time_features()
        except (RunError, FlinkRestError, FeatureStoreError) as error:
            failure = error
        savepoint = local.stop() or local.savepoint
    if failure is not None:
        resume_from = savepoint or local.resume_point()
        if isinstance(failure, WindowsMissing):
            resume = ""  # its message says what to do: resuming cannot bring the windows back
        elif resume_from:
            resume = f"; resume with the same command (from {resume_from})"
        else:
            resume = "; resume with the same command (nothing was checkpointed yet: it starts from the beginning)"
        raise fail(f"{failure}{resume}", EXIT_INTERRUPTED if isinstance(failure, Interrupted) else EXIT_FAILED)
    final["job_state"] = local.job_state()  # after the stop: what a script should know
    final.pop("feature_store", None)  # a live-view state; the retries count is in store_retries
    _print_run_summary({**final, "newest_rows": newest, "savepoint": savepoint, "timeline_s": local.timeline_seconds(),
                        "job_plan": "cached" if local.plan_loaded else "planned", "data_dir": str(data_dir)}, event_times, fmt)


def _print_run_summary(summary: dict, event_time_features: dict[str, str], fmt: OutputFormat) -> None:
    """The run's summary; as a table, each group's newest row shows its event time as ISO 8601 UTC (as JSON or CSV,
    the row is the record the store holds, as `chainfeat latest` prints it)."""
    if fmt is OutputFormat.table:
        per_group = {key: ", ".join(f"{group}: {count}" for group, count in summary[key].items())
                     for key in ("windows_computed", "windows_written", "windows_skipped_partial", "window_shapes",
                                 "records_online") if key in summary}
        steps = ", ".join(f"{step} {seconds:g}s" for step, seconds in summary.get("timeline_s", {}).items())
        shown = {**summary, **per_group, "timeline_s": steps}
        typer.echo(render_record({k: v for k, v in shown.items() if k != "newest_rows"}, fmt, "chainfeat run"))
        for group, row in summary["newest_rows"].items():
            if row:
                typer.echo(render_record(with_moment_shown(row, event_time_features[group]), fmt, f"{group}: newest row"))
    else:
        typer.echo(render_record(summary, fmt))


def backfill(
    start: str | None = typer.Option(None, "--from", help="Transactions from this time on (ISO 8601, UTC unless it says, or unix s)."),
    end: str | None = typer.Option(None, "--to", help="Transactions before this time (ISO 8601 or unix s)."),
    group: list[str] = typer.Option([], "--group", help="Feature group to fill (repeatable; default: every feature file)."),
    data_dir: Path = DataDirOption,
    archive: str | None = typer.Option(
        None, "--archive", help="Raw archive in the date=/hour= layout: a path (default: the data dir's spool), or "
                                "s3://BUCKET/PREFIX (e.g. the CDK app's Firehose archive, s3://BUCKET/raw), whose "
                                "objects --from/--to need are staged into the data dir's archive-cache/ first "
                                "(resumable; endpoint: boto3's, AWS_ENDPOINT_URL_S3)."),
    fmt: OutputFormat = Format,
    features: Path | None = FeaturesDir,
    properties: Path | None = Properties,
    endpoint_url: str | None = EndpointUrl,
    dashboard_port: int = typer.Option(0, help="Port of the Flink dashboard (binds 127.0.0.1; 0: any free port)."),
    flink_url: str | None = typer.Option(
        None, "--flink-url", help=f"Run on a self-managed Flink cluster (its REST address, http://HOST:{DEFAULT_REST_PORT}) "
                                  "from the application zip, instead of a local MiniCluster."),
    zip_path: Path = typer.Option(DEFAULT_ZIP, "--zip", help="With --flink-url: the zip from `chainfeat package`."),
) -> None:
    """Compute the feature groups over the raw archive with the streaming job's SQL (Flink batch mode) and write
    every complete window to the feature store; windows the archive covers only in part are skipped. Idempotent.

    Example: chainfeat backfill --from 2024-05-01T00:00:00Z --to 2024-05-01T06:00:00Z --group tx_minute_features
    """

    try:
        time_range = TimeRange(parse_moment(start) if start else None, parse_moment(end) if end else None)
        job = Backfill(BackfillOptions(data_dir=data_dir, archive=archive, time_range=time_range, groups=tuple(group),
                                       features=features, properties=properties, endpoint_url=endpoint_url,
                                       dashboard_port=dashboard_port, flink_url=flink_url, zip_path=zip_path))
    except ConfigError as error:  # a ValueError too: the properties file, not the command line
        raise fail(str(error)) from None
    except (ValueError, UnknownGroup) as error:
        raise fail(str(error), EXIT_USAGE) from None
    where = f" on {flink_url}" if flink_url else ""
    typer.echo(f"backfilling {', '.join(path.stem for path in job.features)} from {job.archive}{where}...", err=True)
    with stop_on_signals() as stop:
        try:
            summary: dict = {}
            BackfillView(job).run(lambda: summary.update(job.run(interrupted=stop)), stop)
        except BackfillInterrupted as error:
            raise fail(f"{error}; run the same command again to finish (a backfill's writes are idempotent)",
                       EXIT_INTERRUPTED) from None
        except (BackfillError, FeatureStoreLocked, FeatureStoreError, OSError, ValueError) as error:
            raise fail(str(error)) from None  # FeatureFileError (a ValueError) names the feature file, line and column
        finally:
            job.stop()
    _print_backfill_summary(summary, fmt)


def _print_backfill_summary(summary: dict, fmt: OutputFormat) -> None:
    groups = [[name, summary["window_shapes"][name], written, summary["windows_skipped_partial"][name]]
              for name, written in summary["windows_written"].items()]
    columns = ["feature_group", "window", "windows_written", "windows_skipped_partial"]
    totals = {key: value for key, value in summary.items() if not isinstance(value, dict)}
    if fmt is OutputFormat.json:
        typer.echo(render_record(summary, fmt))
    elif fmt is OutputFormat.csv:  # one row per group, the run's figures on each
        typer.echo(render_rows([*columns, *totals], [[*row, *totals.values()] for row in groups], fmt))
    else:
        steps = ", ".join(f"{step} {seconds:g}s" for step, seconds in summary["timeline_s"].items())
        typer.echo(render_record({**totals, "timeline_s": steps}, fmt, "chainfeat backfill"))
        typer.echo(render_rows(columns, groups, fmt, "windows per feature group"))


def prepare(force: bool = typer.Option(False, "--force", help="Build the archive again even if it exists.")) -> None:
    """Make local runs start faster: build the JVM's class archive (once per Java and PyFlink install, ~1 min).

    It runs the bundled replay once, with the JVM writing the classes it loaded into an archive that every
    later local JVM maps (start-up ~7 s shorter). `make setup` runs it.

    Example: chainfeat prepare
    """

    use_planner_lib()  # the classpath the archive is of
    path = archive_path()
    if path.exists() and not force:
        typer.echo(f"the JVM class archive is ready: {path}", err=True)
        return
    typer.echo(f"building the JVM class archive {path} (a short replay, then the JVM writes it; ~1 min)...", err=True)
    try:
        build_class_archive(path)
    except ClassArchiveError as error:
        raise fail(f"{error}; runs work without it (try `chainfeat prepare --force`)") from None
    typer.echo(f"the JVM class archive is ready: {path} ({path.stat().st_size / 2**20:.0f} MiB)", err=True)


def record(
    output: Path = typer.Option(..., "--output", "-o", help="Recording file to append to (.jsonl or .jsonl.gz)."),
    polls: int = typer.Option(0, min=0, help="Stop after this many polls (0: until Ctrl-C)."),
    interval: float = typer.Option(15.0, help="Seconds between polls (shortened on gaps)."),
    min_interval: float = typer.Option(5.0, help="Shortest interval when polls stop overlapping."),
    url: str = typer.Option(LIVE_URL, help="The unconfirmed-transactions API."),
) -> None:
    """Record the live API: one JSON line per poll, {"polled_at": ..., "txs": [...]}.

    Example: chainfeat record --output capture.jsonl.gz --polls 240
    """
    poller = Poller(LiveSource(url), RecordingWriter(output), interval, min(min_interval, interval))
    typer.echo(f"recording {url} into {output} every {interval:g}s; Ctrl-C to stop", err=True)
    with stop_on_signals() as stop:
        while not stop.is_set() and (polls == 0 or poller.stats.polls < polls):
            if poller.poll_once() is None and poller.stats.polls == 0 and poller.stats.errors >= 3:
                raise fail(f"{poller.stats.last_error}; nothing recorded")
            if polls and poller.stats.polls >= polls:
                break
            stop.wait(poller.stats.interval_s)
    stats = poller.stats.snapshot()
    typer.echo(f"recorded {stats['polls']} polls, {stats['transactions']} transactions, {stats['gaps']} gaps, "
               f"{stats['errors']} failed polls into {output}", err=True)


def poll(
    data_dir: Path = DataDirOption,
    source: PollSource = typer.Option(PollSource.live, help="live (blockchain.com) or replay (a recording)."),
    recording: Path = RecordingPath,
    speed: float = Speed,
    interval: float = typer.Option(15.0, help="Seconds between live polls (shortened on gaps)."),
    sink: Sink = typer.Option(Sink.spool, help="spool (the data dir's) or kinesis."),
    stream: str | None = typer.Option(None, help="Kinesis stream name (with --sink kinesis)."),
    region: str = typer.Option(DEFAULT_REGION, envvar="AWS_REGION", help="AWS region of the stream."),
    kinesis_endpoint_url: str | None = typer.Option(None, help="Kinesis endpoint (tests, LocalStack, moto)."),
) -> None:
    """Poll into the data dir's spool (a running `chainfeat run` picks it up) or onto a Kinesis stream.

    Example: chainfeat poll --source live --sink kinesis --stream chainfeat-ingest
    """
    if sink is Sink.kinesis:
        if not stream:
            raise fail("--sink kinesis needs --stream NAME", EXIT_USAGE)
        writer = KinesisWriter(KinesisConfig(stream, region=region, endpoint_url=kinesis_endpoint_url))
        where = f"Kinesis stream {stream} ({region})"
    else:
        writer = None  # the data dir's spool
        where = str(DataDir(data_dir).spool)
    try:
        with stop_on_signals() as stop:
            poller = make_poller(DataDir(data_dir), source, recording, speed, writer, stop, interval)
            typer.echo(f"polling ({source.value}) into {where}; Ctrl-C to stop", err=True)
            poller.run(stop)
    except UsageError as error:
        raise fail(str(error), EXIT_USAGE) from None
    except (RunError, KinesisWriteError, RecordingError) as error:
        raise fail(str(error)) from None
    stats = poller.stats.snapshot()
    typer.echo(f"{stats['polls']} polls, {stats['transactions']} transactions, {stats['gaps']} gaps", err=True)
    if poller.stats.fatal_error:
        raise fail(poller.stats.fatal_error)
