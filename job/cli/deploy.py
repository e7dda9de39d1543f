"""The deployment's commands: build the application zip, submit it to a cluster or Managed Flink, watch a job."""

from __future__ import annotations

from pathlib import Path

import boto3
import typer
from botocore.exceptions import BotoCoreError, ClientError

from connectors import DEFAULT_REGION
from connectors.flink_rest import DEFAULT_REST_PORT, FlinkRestError
from job.cli.common import EXIT_USAGE, DataDirOption, Format, Properties, fail
from job.cli.output import OutputFormat, render_record, render_rows
from job.deploy.managed_flink import DeployError, ManagedFlinkTarget, deploy
from job.deploy.package import DEFAULT_ZIP, KINESIS_CONNECTOR, PackageError, build_zip, fetch_jar, zip_run_options
from job.deploy.submit import SubmitError, job_status, submit_to_cluster
from job.flow.config import RUN_OPTIONS_GROUP, load_property_groups
from job.paths import CACHE


def package(
    jar: list[Path] = typer.Option([], "--jar", help="Connector jar to bundle instead of downloading it (repeatable)."),
    output: Path = typer.Option(DEFAULT_ZIP, "--output", "-o", help="Zip to write."),
    cache: Path = typer.Option(CACHE / "jars", help="Where downloaded jars are kept."),
    fmt: OutputFormat = Format,
) -> None:
    """Build the application zip for Managed Service for Apache Flink (or any Flink cluster).

    Example: chainfeat package --jar ~/Downloads/flink-sql-connector-aws-kinesis-streams-6.0.0-2.0.jar
    """

    try:
        jars = list(jar) or [fetch_jar(KINESIS_CONNECTOR, cache)]
        options = build_zip(output, jars)
    except PackageError as error:
        raise fail(str(error)) from None
    summary = {"zip": str(output), "bytes": output.stat().st_size, "property_group": RUN_OPTIONS_GROUP, **options}
    typer.echo(render_record(summary, fmt, "application zip"))


def submit(
    flink_url: str | None = typer.Option(None, "--flink-url", help=f"Self-managed cluster: its REST address (http://HOST:{DEFAULT_REST_PORT})."),
    application: str | None = typer.Option(None, "--application", help="Managed Flink: the application's name."),
    bucket: str | None = typer.Option(None, "--bucket", help="Managed Flink: S3 bucket for the zip."),
    key: str = typer.Option(f"chainfeat/{DEFAULT_ZIP.name}", "--key", help="Managed Flink: S3 key for the zip."),
    role_arn: str | None = typer.Option(None, "--role-arn", help="Managed Flink: the application's execution role."),
    region: str = typer.Option(DEFAULT_REGION, envvar="AWS_REGION", help="Managed Flink: AWS region."),
    parallelism: int = typer.Option(1, min=1, help="Managed Flink: parallelism (KPUs)."),
    zip_path: Path = typer.Option(DEFAULT_ZIP, "--zip", help="Zip from `chainfeat package`."),
    properties: Path | None = Properties,
    data_dir: Path = DataDirOption,
    fmt: OutputFormat = Format,
) -> None:
    """Run the packaged job on a self-managed Flink cluster (--flink-url) or on Managed Flink (--application).

    Example: chainfeat submit --application chainfeat --bucket my-artifacts --role-arn arn:aws:iam::123456789012:role/flink
    """

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


def status(
    flink_url: str = typer.Option(f"http://127.0.0.1:{DEFAULT_REST_PORT}", "--flink-url", help="REST address of the Flink cluster."),
    job: str | None = typer.Option(None, "--job", help="Job id (default: the newest job)."),
    fmt: OutputFormat = Format,
) -> None:
    """Job state, uptime, last checkpoint and records in/out per operator, from Flink's REST API.

    Example: chainfeat status --flink-url http://127.0.0.1:8081 --format json
    """

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
