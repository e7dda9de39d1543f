"""Ingestion: the Kinesis stream (one provisioned shard, KMS), the poller on ECS Fargate (Dockerfile, target poller),
and Firehose from the stream to the raw-archive bucket (JSON, partitioned by date/hour, lifecycle rules)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from connectors.archive_layout import (
    FIREHOSE_BUFFERING_INTERVAL_S,
    FIREHOSE_BUFFERING_MIB,
    FIREHOSE_DATA_OUTPUT_PREFIX,
)
from infra import REPO_ROOT
from infra.settings import POLLER_METRICS_NAMESPACE, InfraSettings


def secure_bucket(scope: Construct, construct_id: str, key: kms.IKey, access_logs: s3.IBucket | None,
                  lifecycle_rules: list[s3.LifecycleRule] | None = None) -> s3.Bucket:
    """A private, KMS-encrypted, TLS-only, versioned bucket that logs its access."""
    return s3.Bucket(
        scope, construct_id,
        encryption=s3.BucketEncryption.KMS, encryption_key=key, bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True, versioned=True,
        server_access_logs_bucket=access_logs, server_access_logs_prefix=f"{construct_id}/" if access_logs else None,
        lifecycle_rules=lifecycle_rules, removal_policy=RemovalPolicy.RETAIN,
    )


class IngestionStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, settings: InfraSettings, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.key = kms.Key(self, "IngestionKey", enable_key_rotation=True,
                           description="chainfeat: ingestion stream and raw archive")
        # One shard: the poller puts every poll on it with one partition key, so the job reads the polls in order
        # (connectors/kinesis/producer.py). A shard takes 1 MiB/s and 1000 records/s; the reference load is ~60 KB
        # every 15 s (0.4 %), and the monitoring stack alarms at settings.stream_alarm_percent_of_shard. More shards
        # would stay empty, and on-demand mode costs more for the same one shard. 24 h of retention is in the
        # shard-hour price (longer costs per shard-hour); the raw archive keeps every poll for good.
        self.stream = kinesis.Stream(
            self, "IngestStream", stream_name=settings.stream_name, stream_mode=kinesis.StreamMode.PROVISIONED,
            shard_count=1,
            # KMS with the AWS-managed aws/kinesis key: encrypted at rest without a per-request CMK cost.
            encryption=kinesis.StreamEncryption.MANAGED, retention_period=Duration.hours(24),
        )

        self.access_logs = s3.Bucket(
            self, "AccessLogs", encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))], removal_policy=RemovalPolicy.RETAIN,
        )
        self.raw_archive = secure_bucket(self, "RawArchive", self.key, self.access_logs, lifecycle_rules=[
            s3.LifecycleRule(
                transitions=[
                    s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=Duration.days(30)),
                    s3.Transition(storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                                  transition_after=Duration.days(90)),
                ],
                noncurrent_version_expiration=Duration.days(30),
                abort_incomplete_multipart_upload_after=Duration.days(7),
            ),
        ])
        firehose.DeliveryStream(
            self, "RawArchiveDelivery",
            source=firehose.KinesisStreamSource(self.stream),
            destination=firehose.S3Bucket(
                self.raw_archive,
                # The archive's layout (connectors/archive_layout.py): what `chainfeat backfill --archive s3://` reads.
                data_output_prefix=FIREHOSE_DATA_OUTPUT_PREFIX,
                error_output_prefix="errors/!{firehose:error-output-type}/date=!{timestamp:yyyy-MM-dd}/",
                buffering_interval=Duration.seconds(FIREHOSE_BUFFERING_INTERVAL_S),
                buffering_size=Size.mebibytes(FIREHOSE_BUFFERING_MIB),
                compression=firehose.Compression.GZIP, encryption_key=self.key,
            ),
        )

        # The poller needs the internet (blockchain.com) but no inbound access: public subnets with a public
        # IP and no NAT gateway keep it cheap; the security group allows no ingress.
        self.vpc = ec2.Vpc(self, "PollerVpc", max_azs=2, nat_gateways=0,
                           subnet_configuration=[ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)])
        flow_logs = logs.LogGroup(self, "PollerVpcFlowLogs", retention=logs.RetentionDays.ONE_MONTH,
                                  removal_policy=RemovalPolicy.DESTROY)
        self.vpc.add_flow_log("FlowLogs", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
        cluster = ecs.Cluster(self, "PollerCluster", vpc=self.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED)
        task = ecs.FargateTaskDefinition(self, "PollerTask", cpu=256, memory_limit_mib=512,
                                         runtime_platform=ecs.RuntimePlatform(
                                             cpu_architecture=ecs.CpuArchitecture.X86_64,
                                             operating_system_family=ecs.OperatingSystemFamily.LINUX))
        poller_logs = logs.LogGroup(self, "PollerLogs", retention=logs.RetentionDays.ONE_MONTH,
                                    removal_policy=RemovalPolicy.DESTROY)
        task.add_container(
            "poller",
            image=ecs.ContainerImage.from_asset(str(REPO_ROOT), file="Dockerfile", target="poller",
                                                exclude=[".venv", ".git", ".chainfeat", "cdk.out", "tests", "dist"]),
            environment={"CHAINFEAT_STREAM": self.stream.stream_name,
                         "CHAINFEAT_POLL_INTERVAL_S": str(settings.poll_interval_s),
                         "CHAINFEAT_METRICS_NAMESPACE": POLLER_METRICS_NAMESPACE},
            logging=ecs.LogDrivers.aws_logs(stream_prefix="poller", log_group=poller_logs),
            readonly_root_filesystem=False,  # the health file lives in /tmp
        )
        # Least privilege: put records on this stream (one poll per PutRecord, in order), nothing else.
        task.task_role.add_to_policy(iam.PolicyStatement(
            actions=["kinesis:PutRecord", "kinesis:DescribeStreamSummary"],
            resources=[self.stream.stream_arn],
        ))
        task.task_role.add_to_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"], resources=["*"],  # PutMetricData has no resource-level scope
            conditions={"StringEquals": {"cloudwatch:namespace": POLLER_METRICS_NAMESPACE}},
        ))
        security_group = ec2.SecurityGroup(self, "PollerSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
                                           description="chainfeat poller: outbound HTTPS only, no ingress")
        security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443),
                                       "blockchain.com, Kinesis, ECR, CloudWatch Logs")
        ecs.FargateService(self, "PollerService", cluster=cluster, task_definition=task, desired_count=1,
                           assign_public_ip=True, security_groups=[security_group],
                           vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
                           circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True), min_healthy_percent=0,
                           max_healthy_percent=100)
