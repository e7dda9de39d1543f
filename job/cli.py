"""The ``chainfeat`` command line.

Exit codes scripts can trust: 0 done, 1 failed (the message says what and what to do next),
2 wrong usage, 3 nothing to show yet (e.g. ``latest`` before the first feature row).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import shutil
import signal
import sys
import threading
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Iterator, Optional

import typer

from connectors import DEFAULT_REGION
from connectors.blockchain.poller import Poller
from connectors.blockchain.source import LIVE_URL, LiveSource, RecordingError, RecordingWriter
from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig, FeatureStoreError
from connectors.featurestore.local.server import (
    DEFAULT_PORT,
    FeatureStoreLocked,
    LocalFeatureStoreServer,
    exclusive_offline_store,
    read_server_info,
)
from connectors.featurestore.local.offline import OfflineQueryError, run_query
from connectors.featurestore.local.store import OFFLINE_DIR
from connectors.kinesis.producer import KinesisConfig, KinesisWriteError, KinesisWriter
from job.config import ConfigError, load_property_groups
from job.flink_rest import DEFAULT_REST_PORT, FlinkRestError
from job.data_dir import DataDir
from job.local_run import (
    BUNDLED_RECORDING,
    DEFAULT_DASHBOARD_PORT,
    Interrupted,
    LocalRun,
    NothingNew,
    WindowsMissing,
    RunError,
    RunOptions,
    make_poller,
)
from job.package import DEFAULT_ZIP
from job.output import OutputFormat, render_record, render_rows
from job.progress import ProgressView
from job.settings import DEFAULT_DATA_DIR, DEFAULT_FEATURE_GROUP

EXIT_FAILED, EXIT_USAGE, EXIT_NOTHING_YET, EXIT_INTERRUPTED = 1, 2, 3, 130

app = typer.Typer(
    help="chainfeat: blockchain transactions in, per-minute ML features out (Apache Flink, Python).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
featurestore_app = typer.Typer(help="The local SageMaker-compatible feature store.", no_args_is_help=True)
app.add_typer(featurestore_app, name="featurestore")

DataDirOption = typer.Option(
    DEFAULT_DATA_DIR, "--data-dir", envvar="CHAINFEAT_DATA_DIR", help="Where chainfeat keeps its data.",
    file_okay=False, resolve_path=True,
)
Format = typer.Option(OutputFormat.table, "--format", help="Output format: table, json or csv.")
RecordingPath = typer.Option(BUNDLED_RECORDING, "--recording", help="Recording to replay (one JSON line per poll).")
Speed = typer.Option(1.0, "--speed", min=0, help="Replay pace: 1 = as recorded, 10 = 10x faster, 0 = as fast as possible.")
EndpointUrl = typer.Option(
    None, "--endpoint-url", envvar="CHAINFEAT_FEATURESTORE_URL",
    help="Feature store endpoint (default: the local server of --data-dir, started for the call if needed).",
)


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


@app.callback()
def main_options(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # urllib3 logs every retry; the poller reports the outcome once, with what to do next.
    logging.getLogger("urllib3").setLevel(logging.DEBUG if verbose else logging.ERROR)
    # A failing Python function's traceback is logged by the Python workers running in this process; the
    # run reports the failure once, in one line (the whole trace is in the data dir's Flink logs).
    for worker_logger in ("apache_beam", "pyflink"):
        logging.getLogger(worker_logger).setLevel(logging.DEBUG if verbose else logging.CRITICAL)


@featurestore_app.command("serve")
def featurestore_serve(
    data_dir: Path = DataDirOption,
    host: str = typer.Option("127.0.0.1", help="Interface to bind; keep 127.0.0.1 unless you mean to share it."),
    port: int = typer.Option(DEFAULT_PORT, help="Port to listen on (0 picks a free one)."),
    flush_interval: float = typer.Option(2.0, help="Seconds between offline (Parquet) flushes."),
) -> None:
    """Serve the SageMaker Feature Store API on --host:--port until Ctrl-C or SIGTERM.

    Example: chainfeat featurestore serve --port 8766, then
    boto3.client("sagemaker-featurestore-runtime", endpoint_url="http://127.0.0.1:8766")
    """
    try:
        server = LocalFeatureStoreServer(DataDir(data_dir).featurestore, host=host, port=port, flush_interval_s=flush_interval).start()
    except (FeatureStoreLocked, OSError) as error:
        raise fail(str(error)) from None
    typer.echo(f"feature store listening on {server.url} (data in {server.root}); Ctrl-C to stop", err=True)
    with _stop_on_signals() as stop:
        while not stop.wait(0.5):
            pass
    server.stop()
    typer.echo("feature store stopped; every accepted record is on disk", err=True)


@app.command()
def query(
    sql: str = typer.Argument(..., help="SQL over the offline store; each feature group is a table."),
    data_dir: Path = DataDirOption,
    fmt: OutputFormat = Format,
) -> None:
    """Run SQL (DuckDB) over the offline feature store.

    Example: chainfeat query "SELECT tx_minute, total_nb_trx_1min FROM tx_minute_features ORDER BY 1 DESC LIMIT 5"
    """
    try:
        columns, rows = run_query(DataDir(data_dir).featurestore, sql)
    except OfflineQueryError as error:
        raise fail(f"query failed: {error}") from None
    typer.echo(render_rows(columns, rows, fmt))


@app.command("training-set")
def training_set(
    group: list[str] = typer.Option(..., "--group", help="Feature group to join (repeatable; each adds its features)."),
    labels: Optional[Path] = typer.Option(
        None, "--labels", dir_okay=False,
        help="Labels file (.csv or .parquet): an entity column, a label time column (epoch seconds), any labels."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", dir_okay=False,
                                          help="Training set to write: .parquet or .csv (written atomically)."),
    entity_column: Optional[str] = typer.Option(
        None, "--entity-column", help="Labels column holding the entity (default: each group's record identifier)."),
    time_column: str = typer.Option("label_time", "--time-column",
                                    help="Labels column holding the label time, in epoch seconds."),
    print_sql: bool = typer.Option(
        False, "--print-sql", help="Print the join for Athena (the groups' Glue tables from DescribeFeatureGroup) "
                                   "instead of running it; needs no --labels or --output."),
    labels_table: str = typer.Option(
        "LABELS_DATABASE.LABELS_TABLE", "--labels-table",
        help="The labels' table as Athena knows it, DATABASE.TABLE: what --print-sql reads them from "
             "(default: a placeholder to replace)."),
    region: Optional[str] = typer.Option(
        None, "--region", help="With --print-sql: describe the groups on Amazon SageMaker in this region "
                               "(default: the local store of --data-dir)."),
    endpoint_url: Optional[str] = typer.Option(
        None, "--endpoint-url", help="With --print-sql: describe the groups at this feature-store endpoint."),
    data_dir: Path = DataDirOption,
    fmt: OutputFormat = Format,
) -> None:
    """Join labels point in time to feature groups' offline stores: per label row and group, the newest record
    at or before its label time (ties: the newest write; a deleted record gives nulls). Columns: the labels',
    then GROUP__FEATURE per group. One SQL statement (sql/training_set.sql) that DuckDB runs here and Athena
    unchanged: --print-sql prints it with the Athena table names, reading the labels from --labels-table.

    Example: chainfeat training-set --labels labels.csv --group tx_minute_features --output train.parquet

    For Athena: chainfeat training-set --print-sql --group tx_minute_features --labels-table my_db.my_labels --region eu-west-1
    """
    from job.training_set import LabelsError, TrainingSetError, UnknownGroup, build, resolve_groups, statement

    try:
        if print_sql:
            typer.echo(statement(resolve_groups(group, _group_descriptions(group, data_dir, region, endpoint_url)),
                                 labels_table, entity_column, time_column))
            return
        if labels is None or output is None:
            raise fail("give --labels FILE and --output FILE (or --print-sql for the statement alone)", EXIT_USAGE)
        if region or endpoint_url:
            raise fail("--region and --endpoint-url go with --print-sql; a training set is built from the local "
                       "offline store of --data-dir (on AWS, run the --print-sql statement in Athena)", EXIT_USAGE)
        summary = build(DataDir(data_dir).featurestore, labels, group, output, entity_column, time_column, labels_table)
    except LabelsError as error:
        raise fail(str(error), EXIT_USAGE) from None
    except UnknownGroup as error:
        raise fail(str(error), EXIT_NOTHING_YET) from None
    except (TrainingSetError, FeatureStoreError, OfflineQueryError, OSError) as error:
        raise fail(f"training set failed: {error}") from None
    typer.echo(render_record(summary, fmt, "training set"))


def _group_descriptions(groups: list[str], data_dir: Path, region: str | None,
                        endpoint_url: str | None) -> dict[str, dict | None]:
    """DescribeFeatureGroup's answer per group: from AWS (--region) or an endpoint, else the local store's."""
    if not (region or endpoint_url):
        from connectors.featurestore.local.offline import group_descriptions

        return dict(group_descriptions(DataDir(data_dir).featurestore))
    client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=endpoint_url, region=region or DEFAULT_REGION,
                                                   total_timeout_s=20))
    return {name: client.description(name) for name in groups}


@app.command()
def latest(
    data_dir: Path = DataDirOption,
    fmt: OutputFormat = Format,
    group: str = typer.Option(DEFAULT_FEATURE_GROUP, help="Feature group to read."),
    endpoint_url: Optional[str] = EndpointUrl,
) -> None:
    """Show the online feature row with the newest event time (any feature group, whatever its key).

    Example: chainfeat latest --format json
    """
    try:
        with feature_store_client(data_dir, endpoint_url) as client:
            if not client.exists(group):
                raise fail(f"feature group {group} does not exist at {client.where}; run `chainfeat run` first",
                           EXIT_NOTHING_YET)
            record = client.newest_record(group)
    except FeatureStoreError as error:
        raise fail(str(error)) from None
    if record is None:
        if fmt is OutputFormat.json:
            typer.echo("null")
        raise fail(f"no online record in {group} yet", EXIT_NOTHING_YET)
    typer.echo(render_record(record, fmt, title=f"{group}: newest record"))


@app.command()
def compact(
    data_dir: Path = DataDirOption,
    fmt: OutputFormat = Format,
    group: Optional[str] = typer.Option(None, help="Feature group to compact (default: every group)."),
    min_age_hours: float = typer.Option(
        2.0, "--min-age-hours", min=0, help="Leave hours that ended less than this long ago alone (still written to).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would be compacted; compact nothing."),
) -> None:
    """Merge each hour partition's small offline Parquet files into one (atomic; safe to interrupt and rerun).

    Example: chainfeat compact --dry-run --format json
    """
    from connectors.featurestore.compaction import compact as compact_offline_store  # pyarrow: only when used

    store = DataDir(data_dir).featurestore
    offline = store / OFFLINE_DIR
    root = offline / group if group else offline
    if not root.is_dir():
        groups = ", ".join(sorted(p.name for p in offline.iterdir() if p.is_dir())) if offline.is_dir() else ""
        raise fail(f"no offline data {f'for feature group {group} ' if group else ''}in {data_dir} yet "
                   f"(groups with offline data: {groups or 'none'}); run `chainfeat run` first", EXIT_NOTHING_YET)
    try:
        with exclusive_offline_store(store):
            report = compact_offline_store(str(root), min_age=timedelta(hours=min_age_hours), dry_run=dry_run)
    except FeatureStoreLocked as error:
        raise fail(f"cannot compact: {error}; stop it first (its flushes could rewrite files a compaction removes)") from None
    except OSError as error:
        raise fail(f"compacting {root} failed: {error}") from None
    typer.echo(render_record(asdict(report), fmt, "offline store compaction"))
    if report.failed:
        raise fail("these partitions were left as they were: " + "; ".join(report.failed))


@app.command()
def run(
    data_dir: Path = DataDirOption,
    source: str = typer.Option("replay", help="replay (a recording) or live (blockchain.com)."),
    recording: Path = RecordingPath,
    speed: float = Speed,
    exit_when_done: bool = typer.Option(False, "--exit-when-done", help="Replay to the end, flush every window, print a summary, exit."),
    fmt: OutputFormat = Format,
    dashboard_port: int = typer.Option(DEFAULT_DASHBOARD_PORT, help="Port of the Flink dashboard (binds 127.0.0.1; 0: any free port)."),
    featurestore_port: int = typer.Option(DEFAULT_PORT, help="Port of the local feature store (0: any free port)."),
    properties: Optional[Path] = typer.Option(None, help="Managed Flink properties file (default: job/application_properties.json)."),
    features: Optional[Path] = typer.Option(
        None, "--features", file_okay=False, exists=True,
        help="Directory of feature files (one feature group per .sql file; default: sql/features/).",
    ),
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
    except (RunError, ConfigError, RecordingError, ValueError) as error:
        raise fail(str(error)) from None
    typer.echo(f"starting chainfeat on {data_dir} (source: {source}"
               f"{f', {recording.name} at speed {speed:g}' if source == 'replay' else ''})...", err=True)
    # From here on Ctrl-C/SIGTERM only set `stop`: during start-up the run stops before it submits the job,
    # afterwards with a savepoint; never a KeyboardInterrupt in the middle of a call into the JVM.
    with _stop_on_signals() as stop:
        try:
            local.start(interrupted=stop)
        except NothingNew as done:
            typer.echo(str(done), err=True)
            summary = {**local.counters(), "job_state": "FINISHED", "newest_rows": local.newest_rows(),
                       "savepoint": local.restored_from, "data_dir": str(data_dir)}
            local.stop()
            _print_run_summary(summary, fmt)
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
        view = ProgressView(local)
        failure: Exception | None = None
        try:
            if exit_when_done:
                view.run(lambda: local.wait_until_done(interrupted=stop), stop)
            else:
                view.run(stop.wait, stop)
            final = {**local.counters(), "windows_computed": local.windows_computed()}
            newest = local.newest_rows()
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
    _print_run_summary({**final, "newest_rows": newest, "savepoint": savepoint, "timeline_s": local.timeline(),
                        "job_plan": "cached" if local.plan_loaded else "planned", "data_dir": str(data_dir)}, fmt)


def _print_run_summary(summary: dict, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.table:
        per_group = {key: ", ".join(f"{group}: {count}" for group, count in summary[key].items())
                     for key in ("windows_computed", "windows_written") if key in summary}
        steps = ", ".join(f"{step} {seconds:g}s" for step, seconds in summary.get("timeline_s", {}).items())
        shown = {**summary, **per_group, "timeline_s": steps}
        typer.echo(render_record({k: v for k, v in shown.items() if k != "newest_rows"}, fmt, "chainfeat run"))
        for group, row in summary["newest_rows"].items():
            if row:
                typer.echo(render_record(row, fmt, f"{group}: newest row"))
    else:
        typer.echo(render_record(summary, fmt))


@app.command()
def backfill(
    start: Optional[str] = typer.Option(None, "--from", help="Transactions from this time on (ISO 8601, UTC unless it says, or unix s)."),
    end: Optional[str] = typer.Option(None, "--to", help="Transactions before this time (ISO 8601 or unix s)."),
    group: list[str] = typer.Option([], "--group", help="Feature group to fill (repeatable; default: every feature file)."),
    data_dir: Path = DataDirOption,
    archive: Optional[str] = typer.Option(None, "--archive", help="Raw archive, a path or URI in the spool's date=/hour= "
                                                                  "layout (default: the data dir's spool)."),
    fmt: OutputFormat = Format,
    features: Optional[Path] = typer.Option(
        None, "--features", file_okay=False, exists=True,
        help="Directory of feature files (one feature group per .sql file; default: sql/features/).",
    ),
    properties: Optional[Path] = typer.Option(None, help="Managed Flink properties file (default: job/application_properties.json)."),
    endpoint_url: Optional[str] = EndpointUrl,
    dashboard_port: int = typer.Option(0, help="Port of the Flink dashboard (binds 127.0.0.1; 0: any free port)."),
    flink_url: Optional[str] = typer.Option(
        None, "--flink-url", help=f"Run on a self-managed Flink cluster (its REST address, http://HOST:{DEFAULT_REST_PORT}) "
                                  "from the application zip, instead of a local MiniCluster."),
    zip_path: Path = typer.Option(DEFAULT_ZIP, "--zip", help="With --flink-url: the zip from `chainfeat package`."),
) -> None:
    """Compute the feature groups over the raw archive with the streaming job's SQL (Flink batch mode) and write
    every complete window to the feature store; windows the archive covers only in part are skipped. Idempotent.

    Example: chainfeat backfill --from 2024-05-01T00:00:00Z --to 2024-05-01T06:00:00Z --group tx_minute_features
    """
    from job.backfill import Backfill, BackfillInterrupted, BackfillOptions
    from job.backfill_job import BackfillError, TimeRange, UnknownGroup, parse_moment
    from job.progress import BackfillView

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
    with _stop_on_signals() as stop:
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


@app.command()
def prepare(force: bool = typer.Option(False, "--force", help="Build the archive again even if it exists.")) -> None:
    """Make local runs start faster: build the JVM's class archive (once per Java and PyFlink install, ~1 min).

    It runs the bundled replay once, with the JVM writing the classes it loaded into an archive that every
    later local JVM maps (start-up ~7 s shorter). `make setup` runs it.

    Example: chainfeat prepare
    """
    from job.jvm import ClassArchiveError, archive_path, build_class_archive, use_planner_lib

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


@app.command()
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
    with _stop_on_signals() as stop:
        while not stop.is_set() and (polls == 0 or poller.stats.polls < polls):
            if poller.poll_once() is None and poller.stats.polls == 0 and poller.stats.errors >= 3:
                raise fail(f"{poller.stats.last_error}; nothing recorded")
            if polls and poller.stats.polls >= polls:
                break
            stop.wait(poller.stats.interval_s)
    stats = poller.stats.snapshot()
    typer.echo(f"recorded {stats['polls']} polls, {stats['transactions']} transactions, {stats['gaps']} gaps, "
               f"{stats['errors']} failed polls into {output}", err=True)


@app.command()
def poll(
    data_dir: Path = DataDirOption,
    source: str = typer.Option("live", help="live (blockchain.com) or replay (a recording)."),
    recording: Path = RecordingPath,
    speed: float = Speed,
    interval: float = typer.Option(15.0, help="Seconds between live polls (shortened on gaps)."),
    sink: str = typer.Option("spool", help="spool (the data dir's) or kinesis."),
    stream: Optional[str] = typer.Option(None, help="Kinesis stream name (with --sink kinesis)."),
    region: str = typer.Option(DEFAULT_REGION, envvar="AWS_REGION", help="AWS region of the stream."),
    kinesis_endpoint_url: Optional[str] = typer.Option(None, help="Kinesis endpoint (tests, LocalStack, moto)."),
) -> None:
    """Poll into the data dir's spool (a running `chainfeat run` picks it up) or onto a Kinesis stream.

    Example: chainfeat poll --source live --sink kinesis --stream chainfeat-ingest
    """
    if sink == "kinesis":
        if not stream:
            raise fail("--sink kinesis needs --stream NAME", EXIT_USAGE)
        writer = KinesisWriter(KinesisConfig(stream, region=region, endpoint_url=kinesis_endpoint_url))
        where = f"Kinesis stream {stream} ({region})"
    elif sink == "spool":
        writer = None  # the data dir's spool
        where = str(DataDir(data_dir).spool)
    else:
        raise fail(f"--sink must be spool or kinesis, not {sink!r}", EXIT_USAGE)
    try:
        with _stop_on_signals() as stop:
            poller = make_poller(DataDir(data_dir), source, recording, speed, writer, stop, interval)
            typer.echo(f"polling ({source}) into {where}; Ctrl-C to stop", err=True)
            poller.run(stop)
    except RunError as error:
        raise fail(str(error), EXIT_USAGE) from None
    except (KinesisWriteError, RecordingError) as error:
        raise fail(str(error)) from None
    stats = poller.stats.snapshot()
    typer.echo(f"{stats['polls']} polls, {stats['transactions']} transactions, {stats['gaps']} gaps", err=True)
    if poller.stats.fatal_error:
        raise fail(poller.stats.fatal_error)


@app.command()
def package(
    jar: list[Path] = typer.Option([], "--jar", help="Connector jar to bundle instead of downloading it (repeatable)."),
    output: Path = typer.Option(DEFAULT_ZIP, "--output", "-o", help="Zip to write."),
    cache: Path = typer.Option(Path.home() / ".cache" / "chainfeat" / "jars", help="Where downloaded jars are kept."),
    fmt: OutputFormat = Format,
) -> None:
    """Build the application zip for Managed Service for Apache Flink (or any Flink cluster).

    Example: chainfeat package --jar ~/Downloads/flink-sql-connector-aws-kinesis-streams-6.0.0-2.0.jar
    """
    from job.package import KINESIS_CONNECTOR, RUN_OPTIONS_GROUP, PackageError, build_zip, fetch_jar

    try:
        jars = list(jar) or [fetch_jar(KINESIS_CONNECTOR, cache)]
        options = build_zip(output, jars)
    except PackageError as error:
        raise fail(str(error)) from None
    summary = {"zip": str(output), "bytes": output.stat().st_size, "property_group": RUN_OPTIONS_GROUP, **options}
    typer.echo(render_record(summary, fmt, "application zip"))


@app.command()
def submit(
    flink_url: Optional[str] = typer.Option(None, "--flink-url", help=f"Self-managed cluster: its REST address (http://HOST:{DEFAULT_REST_PORT})."),
    application: Optional[str] = typer.Option(None, "--application", help="Managed Flink: the application's name."),
    bucket: Optional[str] = typer.Option(None, "--bucket", help="Managed Flink: S3 bucket for the zip."),
    key: str = typer.Option(f"chainfeat/{DEFAULT_ZIP.name}", "--key", help="Managed Flink: S3 key for the zip."),
    role_arn: Optional[str] = typer.Option(None, "--role-arn", help="Managed Flink: the application's execution role."),
    region: str = typer.Option(DEFAULT_REGION, envvar="AWS_REGION", help="Managed Flink: AWS region."),
    parallelism: int = typer.Option(1, min=1, help="Managed Flink: parallelism (KPUs)."),
    zip_path: Path = typer.Option(DEFAULT_ZIP, "--zip", help="Zip from `chainfeat package`."),
    properties: Optional[Path] = typer.Option(None, help="Properties file (default: job/application_properties.json)."),
    data_dir: Path = DataDirOption,
    fmt: OutputFormat = Format,
) -> None:
    """Run the packaged job on a self-managed Flink cluster (--flink-url) or on Managed Flink (--application).

    Example: chainfeat submit --application chainfeat --bucket my-artifacts --role-arn arn:aws:iam::123456789012:role/flink
    """
    from job.submit import SubmitError, submit_to_cluster

    if bool(flink_url) == bool(application):
        raise fail("give either --flink-url (a Flink cluster) or --application (Managed Flink)", EXIT_USAGE)
    if flink_url:
        typer.echo(f"submitting {zip_path} to {flink_url}...", err=True)
        try:
            job_id = submit_to_cluster(zip_path, flink_url, properties, data_dir)
        except SubmitError as error:
            raise fail(str(error)) from None
        typer.echo(render_record({"job_id": job_id, "dashboard": f"{flink_url.rstrip('/')}/#/job/running/{job_id}/overview"},
                                 fmt, "submitted"))
        return
    if not (bucket and role_arn):
        raise fail("--application needs --bucket and --role-arn", EXIT_USAGE)
    if not zip_path.is_file():
        raise fail(f"{zip_path} not found; build it with `chainfeat package`")
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from job.managed_flink import DeployError, ManagedFlinkTarget, deploy
    from job.package import zip_run_options

    target = ManagedFlinkTarget(application, bucket, key, role_arn, parallelism)
    try:
        detail = deploy(zip_path, zip_run_options(zip_path), load_property_groups(properties), target,
                        boto3.client("s3", region_name=region), boto3.client("kinesisanalyticsv2", region_name=region),
                        progress=lambda message: typer.echo(message, err=True))
    except (DeployError, ClientError, BotoCoreError) as error:
        raise fail(f"deploying to Managed Flink failed: {error}") from None
    typer.echo(render_record({"application": application, "status": detail["ApplicationStatus"],
                              "version": detail.get("ApplicationVersionId"), "arn": detail.get("ApplicationARN")},
                             fmt, "Managed Flink"))


@app.command()
def status(
    flink_url: str = typer.Option(f"http://127.0.0.1:{DEFAULT_REST_PORT}", "--flink-url", help="REST address of the Flink cluster."),
    job: Optional[str] = typer.Option(None, "--job", help="Job id (default: the newest job)."),
    fmt: OutputFormat = Format,
) -> None:
    """Job state, uptime, last checkpoint and records in/out per operator, from Flink's REST API.

    Example: chainfeat status --flink-url http://127.0.0.1:8081 --format json
    """
    from job.submit import SubmitError, job_status

    try:
        report = job_status(flink_url, job)
    except (FlinkRestError, SubmitError) as error:
        raise fail(str(error)) from None
    if fmt is OutputFormat.table:
        operators = report.pop("operators")
        typer.echo(render_record({**report, "last_checkpoint": report["last_checkpoint"] or "none yet"}, fmt, "job"))
        typer.echo(render_rows(["name", "records_in", "records_out", "status"],
                               [list(op.values()) for op in operators], fmt, "operators"))
    else:
        typer.echo(render_record(report, fmt))


@contextlib.contextmanager
def feature_store_client(data_dir: Path, endpoint_url: str | None) -> Iterator[FeatureStoreClient]:
    """A client for ``endpoint_url``, else the server running on ``data_dir``, else one started for the call."""
    if endpoint_url:
        yield FeatureStoreClient(FeatureStoreConfig(endpoint_url=endpoint_url))
        return
    running = read_server_info(DataDir(data_dir).featurestore)
    if running:
        yield FeatureStoreClient(FeatureStoreConfig(endpoint_url=running["url"]))
        return
    with LocalFeatureStoreServer(DataDir(data_dir).featurestore, port=0).start() as server:
        yield FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url, total_timeout_s=10))


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM, so servers shut down (and flush) instead of dying mid-write."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # before a command installed its own handler (e.g. while a run starts)
        typer.echo("interrupted; run the same command again to resume", err=True)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        # The interpreter's last full collection walks every object a run made (PyFlink, Beam, pyarrow): ~0.5 s
        # after the summary is out. Every file is closed by then, so it skips them; exit handlers still run.
        gc.freeze()


if __name__ == "__main__":
    main()
