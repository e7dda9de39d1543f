"""The feature store's commands: serve the local store, read it (latest, query), compact it, and build training
sets from it."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import typer

from connectors import DEFAULT_REGION
from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig, FeatureStoreError
from connectors.featurestore.compaction import compact as compact_offline_store
from connectors.featurestore.local.offline import OfflineQueryError, group_descriptions, run_query
from connectors.featurestore.local.server import (
    DEFAULT_PORT,
    FeatureStoreLocked,
    LocalFeatureStoreServer,
    exclusive_offline_store,
)
from connectors.featurestore.local.store import OFFLINE_DIR
from job.cli.common import (
    DEFAULT_FEATURE_GROUP,
    EXIT_NOTHING_YET,
    EXIT_USAGE,
    DataDirOption,
    EndpointUrl,
    Format,
    fail,
    stop_on_signals,
)
from job.cli.output import OutputFormat, render_record, render_rows
from job.local.data_dir import DataDir
from job.local.feature_store import feature_store_client
from job.offline.training_set import LabelsError, TrainingSetError, UnknownGroup, build, resolve_groups, statement


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
    with stop_on_signals() as stop:
        while not stop.wait(0.5):
            pass
    server.stop()
    typer.echo("feature store stopped; every accepted record is on disk", err=True)


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


def training_set(
    group: list[str] = typer.Option(..., "--group", help="Feature group to join (repeatable; each adds its features)."),
    labels: Path | None = typer.Option(
        None, "--labels", dir_okay=False,
        help="Labels file (.csv or .parquet): an entity column, a label time column (epoch seconds), any labels."),
    output: Path | None = typer.Option(None, "--output", "-o", dir_okay=False,
                                          help="Training set to write: .parquet or .csv (written atomically)."),
    entity_column: str | None = typer.Option(
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
    region: str | None = typer.Option(
        None, "--region", help="With --print-sql: describe the groups on Amazon SageMaker in this region "
                               "(default: the local store of --data-dir)."),
    endpoint_url: str | None = typer.Option(
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

        return dict(group_descriptions(DataDir(data_dir).featurestore))
    client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=endpoint_url, region=region or DEFAULT_REGION,
                                                   total_timeout_s=20))
    return {name: client.description(name) for name in groups}


def latest(
    data_dir: Path = DataDirOption,
    fmt: OutputFormat = Format,
    group: str | None = typer.Option(
        None, help=f"Feature group to read (default: {DEFAULT_FEATURE_GROUP}, if the store has it)."),
    record_id: list[str] = typer.Option(
        [], "--id", help="Record identifier to read (repeatable; GetRecord, or BatchGetRecord for several)."),
    endpoint_url: str | None = EndpointUrl,
) -> None:
    """Show online feature rows: the one with the newest event time, or those of the record identifiers asked for.

    Example: chainfeat latest --group relay_minute --id 127.0.0.1 --id 0.0.0.0 --format json
    """
    try:
        with feature_store_client(DataDir(data_dir).featurestore, endpoint_url) as client:
            name = group or DEFAULT_FEATURE_GROUP
            if not client.exists(name):
                groups = client.group_names()
                if not groups:
                    raise fail(f"no feature group in {client.where} yet; run `chainfeat run` first", EXIT_NOTHING_YET)
                raise fail(f"no feature group {name} in {client.where}; its groups: {', '.join(groups)} "
                           "(pick one with --group)", EXIT_NOTHING_YET)
            if record_id:
                records = client.get_records(name, list(dict.fromkeys(record_id)))
            else:
                newest = client.newest_record(name)
                records = [newest] if newest is not None else []
            identifier = client.describe(name).record_identifier
    except FeatureStoreError as error:
        raise fail(str(error)) from None
    if not records:
        if fmt is OutputFormat.json:
            typer.echo("null" if not record_id else "[]")
        missing = f"no online record {', '.join(record_id)}" if record_id else "no online record"
        raise fail(f"{missing} in {name} yet", EXIT_NOTHING_YET)
    missing = sorted(set(record_id) - {str(record[identifier]) for record in records})
    if len(record_id) > 1 or missing:
        columns = list(records[0])
        typer.echo(render_rows(columns, [[record[column] for column in columns] for record in records], fmt,
                               f"{name}: online records"))
        if missing:
            raise fail(f"not in {name} (online): {', '.join(missing)}", EXIT_NOTHING_YET)
        return
    typer.echo(render_record(records[0], fmt, title=f"{name}: {'newest record' if not record_id else record_id[0]}"))


def delete_group(
    group: str = typer.Argument(..., help="Feature group to delete."),
    yes: bool = typer.Option(False, "--yes", help="Delete without asking (scripts)."),
    data_dir: Path = DataDirOption,
    endpoint_url: str | None = EndpointUrl,
) -> None:
    """Delete a feature group (DeleteFeatureGroup): its online records go, its offline data stays, as on AWS. The
    next `chainfeat run` creates it again from its feature file, e.g. after the file changed its record identifier.

    Example: chainfeat featurestore delete-group fee_buckets --yes
    """
    try:
        with feature_store_client(DataDir(data_dir).featurestore, endpoint_url) as client:
            if not client.exists(group):
                raise fail(f"no feature group {group} in {client.where}; its groups: "
                           f"{', '.join(client.group_names()) or 'none'}", EXIT_NOTHING_YET)
            if not yes and not typer.confirm(f"delete feature group {group} in {client.where}?", err=True):
                raise fail("nothing deleted", EXIT_USAGE)
            client.delete_group(group)
    except FeatureStoreLocked as error:
        raise fail(f"{error}; delete it through the running server: --endpoint-url URL") from None
    except FeatureStoreError as error:
        raise fail(str(error)) from None
    typer.echo(f"deleted feature group {group}; its offline data stays", err=True)


def compact(
    data_dir: Path = DataDirOption,
    fmt: OutputFormat = Format,
    group: str | None = typer.Option(None, help="Feature group to compact (default: every group)."),
    min_age_hours: float = typer.Option(
        2.0, "--min-age-hours", min=0, help="Leave hours that ended less than this long ago alone (still written to).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would be compacted; compact nothing."),
) -> None:
    """Merge each hour partition's small offline Parquet files into one (atomic; safe to interrupt and rerun).

    Example: chainfeat compact --dry-run --format json
    """

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
