"""`chainfeat submit --application NAME`: deploy the application zip to Amazon Managed Service for
Apache Flink — upload to S3, create or update the application with the zip's run options and the
property groups of the one properties file, start it, and wait with progress until RUNNING."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from job.flow.config import RUN_OPTIONS_GROUP, duration_ms, with_defaults

RUNTIME = "FLINK-2_3"
MIN_PAUSE_BETWEEN_CHECKPOINTS_MS = 5000  # the service's default


class DeployError(RuntimeError):
    pass


@dataclass(frozen=True)
class ManagedFlinkTarget:
    application: str
    bucket: str
    key: str
    role_arn: str
    parallelism: int = 1
    parallelism_per_kpu: int = 1


def property_groups(groups: dict[str, dict[str, str]], run_options: dict[str, str]) -> list[dict[str, Any]]:
    """The job's property groups plus the run options group, in the API's shape. Empty values mean
    "not set" in the properties file and are left out: the service rejects empty strings."""
    merged = {**groups, RUN_OPTIONS_GROUP: run_options}
    return [
        {"PropertyGroupId": name, "PropertyMap": {key: value for key, value in values.items() if value != ""}}
        for name, values in merged.items()
    ]


def checkpoint_interval_ms(groups: dict[str, dict[str, str]]) -> int:
    """The Job checkpoint.interval of the properties (else its default). On Managed Flink the application's
    CheckpointConfiguration carries it: the job's code may not set execution.checkpointing.* there."""
    return duration_ms(with_defaults(groups)["Job"]["checkpoint.interval"], "Job checkpoint.interval")


def flink_application_configuration(groups: dict[str, dict[str, str]], parallelism: int,
                                    parallelism_per_kpu: int) -> dict[str, Any]:
    """What the service sets for the job (FlinkApplicationConfiguration, the same shape in the API and in
    CloudFormation): checkpoints every Job checkpoint.interval, the parallelism (the job sets
    parallelism.default only off the service), operator-level metrics for the dashboard."""
    return {
        "CheckpointConfiguration": {
            "ConfigurationType": "CUSTOM", "CheckpointingEnabled": True,
            "CheckpointInterval": checkpoint_interval_ms(groups),
            "MinPauseBetweenCheckpoints": MIN_PAUSE_BETWEEN_CHECKPOINTS_MS,
        },
        "MonitoringConfiguration": {"ConfigurationType": "CUSTOM", "LogLevel": "INFO", "MetricsLevel": "OPERATOR"},
        "ParallelismConfiguration": {
            "ConfigurationType": "CUSTOM", "Parallelism": parallelism,
            "ParallelismPerKPU": parallelism_per_kpu, "AutoScalingEnabled": False,
        },
    }


def as_update(configuration: dict[str, Any]) -> dict[str, Any]:
    """A create-shaped configuration in UpdateApplication's shape (every key gets the suffix Update)."""
    return {f"{key}Update": as_update(value) if isinstance(value, dict) else value
            for key, value in configuration.items()}


def aws_property_groups(groups: dict[str, dict[str, str]], *, stream_arn: str, region: str,
                        outputs_uri: str) -> dict[str, dict[str, str]]:
    """The job's properties as deployed on AWS: the same groups with only the deployment's keys set (Kinesis
    source, S3 side outputs, the region's feature store), key by key, so every other key stays as it is."""
    deployment = {
        "Source": {"type": "kinesis", "stream.arn": stream_arn, "aws.region": region, "endpoint": ""},
        "Outputs": {"dead.letter.path": f"{outputs_uri}/dead_letter", "late.path": f"{outputs_uri}/late"},
        "FeatureStore": {"endpoint.url": "", "region": region},
    }
    merged = {name: dict(values) for name, values in groups.items()}
    for name, values in deployment.items():
        merged.setdefault(name, {}).update(values)
    return merged


def deploy(
    zip_path: Path,
    run_options: dict[str, str],
    groups: dict[str, dict[str, str]],
    target: ManagedFlinkTarget,
    s3: Any,
    flink: Any,
    progress: Callable[[str], None] = lambda message: None,
    timeout_s: float = 1800,
    poll_s: float = 10,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Returns the final DescribeApplication detail; raises DeployError with the service's words."""
    progress(f"uploading {zip_path.name} to s3://{target.bucket}/{target.key}")
    s3.upload_file(str(zip_path), target.bucket, target.key)
    bucket_arn = f"arn:aws:s3:::{target.bucket}"
    groups_api = property_groups(groups, run_options)
    service_settings = flink_application_configuration(groups, target.parallelism, target.parallelism_per_kpu)
    detail = (flink.describe_application(ApplicationName=target.application)["ApplicationDetail"]
              if _exists(flink, target.application) else None)
    if detail is None:
        progress(f"creating application {target.application} ({RUNTIME})")
        flink.create_application(
            ApplicationName=target.application,
            RuntimeEnvironment=RUNTIME,
            ServiceExecutionRole=target.role_arn,
            ApplicationConfiguration={
                "ApplicationCodeConfiguration": {
                    "CodeContent": {"S3ContentLocation": {"BucketARN": bucket_arn, "FileKey": target.key}},
                    "CodeContentType": "ZIPFILE",
                },
                "EnvironmentProperties": {"PropertyGroups": groups_api},
                "FlinkApplicationConfiguration": service_settings,
                "ApplicationSnapshotConfiguration": {"SnapshotsEnabled": True},
            },
        )
    else:
        if detail["ApplicationStatus"] not in ("READY", "RUNNING"):
            raise DeployError(
                f"application {target.application} is {detail['ApplicationStatus']}; wait until it is READY or "
                "RUNNING, then submit again"
            )
        progress(f"updating application {target.application} (version {detail['ApplicationVersionId']})")
        flink.update_application(
            ApplicationName=target.application,
            CurrentApplicationVersionId=detail["ApplicationVersionId"],
            ApplicationConfigurationUpdate={
                "ApplicationCodeConfigurationUpdate": {
                    "CodeContentTypeUpdate": "ZIPFILE",
                    "CodeContentUpdate": {
                        "S3ContentLocationUpdate": {"BucketARNUpdate": bucket_arn, "FileKeyUpdate": target.key},
                    },
                },
                "EnvironmentPropertyUpdates": {"PropertyGroups": groups_api},
                "FlinkApplicationConfigurationUpdate": as_update(service_settings),
            },
        )
    detail = _wait_for(flink, target.application, ("READY", "RUNNING"), ("UPDATING", "STARTING"),
                       timeout_s, poll_s, sleep, progress)
    if detail["ApplicationStatus"] == "READY":
        progress(f"starting application {target.application}")
        flink.start_application(
            ApplicationName=target.application,
            RunConfiguration={"ApplicationRestoreConfiguration": {"ApplicationRestoreType": "RESTORE_FROM_LATEST_SNAPSHOT"}},
        )
        detail = _wait_for(flink, target.application, ("RUNNING",), ("STARTING", "READY"), timeout_s, poll_s,
                           sleep, progress, settle_on="READY")
    return detail


def _exists(flink: Any, application: str) -> bool:
    for page in flink.get_paginator("list_applications").paginate():
        if any(summary["ApplicationName"] == application for summary in page["ApplicationSummaries"]):
            return True
    return False


def _wait_for(flink: Any, application: str, wanted: tuple[str, ...], passing: tuple[str, ...], timeout_s: float,
              poll_s: float, sleep: Callable[[float], None], progress: Callable[[str], None],
              settle_on: str | None = None) -> dict[str, Any]:
    """Poll DescribeApplication until a wanted status; a status outside wanted+passing is a failure.
    ``settle_on``: a passing status that, seen after leaving it, means the start failed (back to READY)."""
    deadline = time.monotonic() + timeout_s
    left_settle = False
    while True:
        detail = flink.describe_application(ApplicationName=application)["ApplicationDetail"]
        state = detail["ApplicationStatus"]
        progress(f"{application}: {state}")
        if state in wanted:
            return detail
        if settle_on and state != settle_on:
            left_settle = True
        elif settle_on and left_settle:
            raise DeployError(
                f"{application} went back to READY instead of RUNNING: the job failed to start. The reason is "
                f"in its CloudWatch Logs (log group of application {application})"
            )
        if state not in passing:
            raise DeployError(f"{application} is {state} (expected {' or '.join(wanted)})")
        if time.monotonic() > deadline:
            raise DeployError(f"{application} still {state} after {timeout_s:.0f}s")
        sleep(poll_s)
