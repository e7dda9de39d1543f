"""The CDK app: `cdk synth` (cdk.json at the repo root runs this module). Works offline, without AWS
credentials and without Docker (the poller image asset, the Dockerfile's target `poller`, is staged, built
only at deploy)."""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

import aws_cdk as cdk  # noqa: E402 - after the jsii settings above
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.nag import acknowledge_findings  # noqa: E402
from infra.settings import InfraSettings  # noqa: E402
from infra.stacks.feature_store import FeatureStoreStack  # noqa: E402
from infra.stacks.ingestion import IngestionStack  # noqa: E402
from infra.stacks.monitoring import MonitoringStack  # noqa: E402
from infra.stacks.processing import ProcessingStack, packaged_job  # noqa: E402
from infra.stacks.studio import StudioStack  # noqa: E402
from infra.studio_acknowledgments import studio_acknowledged  # noqa: E402


def job_feature_groups() -> list:
    """The job's feature groups, derived from sql/features/ by Flink's planner (a JVM starts for it)."""
    import tempfile
    from pathlib import Path

    from job.flow.config import JobConfig, load_property_groups
    from job.flow.pipeline import derive_feature_groups
    from job.local.jvm import configure_local_jvm

    configure_local_jvm()  # the JVM starts as a local run's does (its class archive)
    with tempfile.TemporaryDirectory() as scratch:
        return derive_feature_groups(JobConfig.from_properties(load_property_groups(), Path(scratch)))


def build_app(app: cdk.App | None = None) -> tuple[cdk.App, dict[str, cdk.Stack]]:
    app = app or cdk.App()
    settings = InfraSettings.from_context({key: app.node.try_get_context(key) for key in InfraSettings.context_keys()})
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    groups = job_feature_groups()
    group_names = [group.name for group in groups]
    ingestion = IngestionStack(app, f"{settings.prefix}-ingestion", settings, env=env)
    feature_store = FeatureStoreStack(app, f"{settings.prefix}-feature-store", settings, groups, ingestion.access_logs,
                                      env=env)
    processing = ProcessingStack(app, f"{settings.prefix}-processing", settings, job_zip=packaged_job(settings.job_zip),
                                 stream=ingestion.stream, feature_group_names=group_names,
                                 access_logs=ingestion.access_logs, env=env)
    processing.add_stack_dependency(feature_store, "the job writes into the feature groups")
    monitoring = MonitoringStack(app, f"{settings.prefix}-monitoring", settings, stream_name=settings.stream_name,
                                 application_name=processing.application_name, feature_group_names=group_names, env=env)
    studio = StudioStack(app, f"{settings.prefix}-studio", settings, feature_group_names=group_names,
                         offline_bucket=feature_store.offline_bucket, offline_key=feature_store.key, env=env)
    stacks: dict[str, cdk.Stack] = {"ingestion": ingestion, "feature_store": feature_store, "processing": processing,
                                    "monitoring": monitoring, "studio": studio}
    # The Studio stack's ids name the feature groups and the feature-store stack, so they are built here.
    depending_on_other_stacks = {"studio": studio_acknowledged(group_names, feature_store.stack_name)}
    for name, stack in stacks.items():
        acknowledge_findings(stack, depending_on_other_stacks.get(name, ()))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stacks


def main() -> None:
    app, _stacks = build_app()
    app.synth()


if __name__ == "__main__":
    main()
