"""Processing: the Managed Flink application (runtime FLINK-2_3) running the packaged job zip, with the
property groups of the job's own properties file (only the deployment section swapped for AWS),
checkpoints and snapshots on, parallelism from the settings, logs in CloudWatch, side outputs in S3."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisanalyticsv2 as flink
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import custom_resources as cr
from constructs import Construct

from connectors.featurestore.client import JOB_IAM_ACTIONS
from infra import REPO_ROOT
from infra.settings import InfraSettings
from infra.stacks.ingestion import secure_bucket
from job.deploy.managed_flink import RUNTIME, aws_property_groups, flink_application_configuration, property_groups
from job.deploy.package import DEFAULT_ZIP, KINESIS_CONNECTOR, PackageError, build_zip, fetch_jar, zip_run_options
from job.flow.config import load_property_groups

DEFAULT_JOB_ZIP = REPO_ROOT / DEFAULT_ZIP
JAR_CACHE = Path.home() / ".cache" / "chainfeat" / "jars"


class JobZipUnavailable(RuntimeError):
    pass


def packaged_job(job_zip: str | None) -> Path:
    """The application zip: the one given with `-c job_zip=PATH`, else built now from this checkout (so a
    deploy always ships the current code) with the Kinesis connector from the cache or Maven Central."""
    if job_zip:
        path = Path(job_zip).resolve()
        if not path.is_file():
            raise JobZipUnavailable(f"job_zip {path} does not exist; build it with `chainfeat package`")
        return path
    try:
        build_zip(DEFAULT_JOB_ZIP, [fetch_jar(KINESIS_CONNECTOR, JAR_CACHE)])
    except PackageError as error:
        raise JobZipUnavailable(
            f"the processing stack needs the job zip and could not build it: {error}. Build it with "
            f"`chainfeat package --jar PATH` and pass `-c job_zip={DEFAULT_JOB_ZIP.relative_to(REPO_ROOT)}`"
        ) from None
    return DEFAULT_JOB_ZIP


class ProcessingStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, settings: InfraSettings, *, job_zip: Path,
                 stream: kinesis.IStream, feature_group_names: list[str], access_logs: s3.IBucket,
                 properties_file: Path | None = None, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.application_name = settings.prefix
        key = kms.Key(self, "ProcessingKey", enable_key_rotation=True,
                      description="chainfeat: Flink side outputs (dead letter, late)")
        self.outputs = secure_bucket(self, "JobOutputs", key, access_logs, lifecycle_rules=[
            # Flink's S3 writer uses multipart uploads; a failover can leave one unfinished.
            s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(7),
                             noncurrent_version_expiration=Duration.days(30)),
        ])
        code = s3_assets.Asset(self, "JobZip", path=str(job_zip))

        role = iam.Role(self, "FlinkRole", assumed_by=iam.ServicePrincipal("kinesisanalytics.amazonaws.com"),
                        description="chainfeat Flink job: read the stream, write side outputs and features")
        # The application's code object only (asset.grant_read would open the whole CDK assets bucket).
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject", "s3:GetObjectVersion"],
                                               resources=[code.bucket.arn_for_objects(code.s3_object_key)]))
        stream.grant_read(role)
        self.outputs.grant_read_write(role)
        key.grant_encrypt_decrypt(role)
        role.add_to_policy(iam.PolicyStatement(
            actions=list(JOB_IAM_ACTIONS),
            resources=[self.format_arn(service="sagemaker", resource="feature-group", resource_name=name)
                       for name in feature_group_names],
        ))
        log_group = logs.LogGroup(self, "FlinkLogs", retention=logs.RetentionDays.ONE_MONTH,
                                  removal_policy=RemovalPolicy.DESTROY)
        log_stream = logs.LogStream(self, "FlinkLogStream", log_group=log_group, removal_policy=RemovalPolicy.DESTROY)
        log_stream_arn = self.format_arn(service="logs", resource="log-group", arn_format=ArnFormat.COLON_RESOURCE_NAME,
                                         resource_name=f"{log_group.log_group_name}:log-stream:{log_stream.log_stream_name}")
        role.add_to_policy(iam.PolicyStatement(actions=["logs:PutLogEvents"], resources=[log_stream_arn]))
        role.add_to_policy(iam.PolicyStatement(actions=["logs:DescribeLogStreams"], resources=[log_group.log_group_arn]))

        groups = aws_property_groups(load_property_groups(properties_file), stream_arn=stream.stream_arn,
                                     region=self.region, outputs_uri=f"s3://{self.outputs.bucket_name}")
        self.property_groups = property_groups(groups, zip_run_options(job_zip))
        self.application = flink.CfnApplication(
            self, "FlinkApplication", application_name=self.application_name, runtime_environment=RUNTIME,
            service_execution_role=role.role_arn,
            application_configuration=flink.CfnApplication.ApplicationConfigurationProperty(
                application_code_configuration=flink.CfnApplication.ApplicationCodeConfigurationProperty(
                    code_content_type="ZIPFILE",
                    code_content=flink.CfnApplication.CodeContentProperty(
                        s3_content_location=flink.CfnApplication.S3ContentLocationProperty(
                            bucket_arn=code.bucket.bucket_arn, file_key=code.s3_object_key)),
                ),
                environment_properties=flink.CfnApplication.EnvironmentPropertiesProperty(property_groups=[
                    flink.CfnApplication.PropertyGroupProperty(property_group_id=group["PropertyGroupId"],
                                                              property_map=group["PropertyMap"])
                    for group in self.property_groups
                ]),
                application_snapshot_configuration=flink.CfnApplication.ApplicationSnapshotConfigurationProperty(
                    snapshots_enabled=True),
            ),
            run_configuration=flink.CfnApplication.RunConfigurationProperty(
                application_restore_configuration=flink.CfnApplication.ApplicationRestoreConfigurationProperty(
                    application_restore_type="RESTORE_FROM_LATEST_SNAPSHOT"),
                flink_run_configuration=flink.CfnApplication.FlinkRunConfigurationProperty(
                    allow_non_restored_state=False)),
        )
        # Checkpoints, parallelism and metrics level: what the job may not set itself on the service, defined once
        # for this app and `chainfeat submit` (the API's shape is CloudFormation's).
        self.application.add_property_override(
            "ApplicationConfiguration.FlinkApplicationConfiguration",
            flink_application_configuration(groups, settings.flink_parallelism, settings.flink_parallelism_per_kpu))
        # The service checks the role's permissions when the application is created.
        self.application.node.add_dependency(role)
        logging_option = flink.CfnApplicationCloudWatchLoggingOption(
            self, "FlinkLogging", application_name=self.application.ref,
            cloud_watch_logging_option=flink.CfnApplicationCloudWatchLoggingOption.CloudWatchLoggingOptionProperty(
                log_stream_arn=log_stream_arn))
        logging_option.node.add_dependency(self.application)
        if settings.start_application:
            self._start_once_created(logging_option)

    def _start_once_created(self, after: Construct) -> None:
        """CloudFormation creates the application READY; start it once (from its latest snapshot, if any).
        Later deploys update the running application in place, which the service restarts from a snapshot."""
        application_arn = self.format_arn(service="kinesisanalytics", resource="application",
                                          resource_name=self.application_name)
        start = cr.AwsCustomResource(
            self, "StartApplication",
            on_create=cr.AwsSdkCall(
                service="KinesisAnalyticsV2", action="startApplication",
                parameters={"ApplicationName": self.application_name, "RunConfiguration": {
                    "ApplicationRestoreConfiguration": {"ApplicationRestoreType": "RESTORE_FROM_LATEST_SNAPSHOT"}}},
                physical_resource_id=cr.PhysicalResourceId.of(f"{self.application_name}-started")),
            policy=cr.AwsCustomResourcePolicy.from_statements([iam.PolicyStatement(
                actions=["kinesisanalytics:StartApplication", "kinesisanalytics:DescribeApplication"],
                resources=[application_arn])]),
            install_latest_aws_sdk=False,
        )
        start.node.add_dependency(after)
