"""Feature store: one SageMaker feature group per sql/features/*.sql view (online + offline, KMS),
defined from the view's output schema — the same derivation the job uses, so the two cannot disagree —
and the Glue job that compacts the offline store's small files every hour (the same module as
`chainfeat compact`: connectors/featurestore/compaction.py)."""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from connectors.featurestore.model import FeatureGroupDefinition
from infra import REPO_ROOT
from infra.settings import InfraSettings
from infra.stacks.ingestion import secure_bucket


def feature_group_properties(definition: FeatureGroupDefinition, offline_uri: str, key_arn: str,
                             role_arn: str) -> dict:
    """CfnFeatureGroup properties. The store configs are plain PascalCase dicts: the *Property classes
    render camelCase, which CloudFormation rejects (tests/infra/test_app.py synthesizes them)."""
    if definition.collections:  # the group would be deployed with String features the job's lists cannot fill
        raise ValueError(
            f"feature group {definition.name} has collection features ({', '.join(definition.collections)}): "
            "CloudFormation's FeatureGroup FeatureDefinition has only FeatureName and FeatureType, and collection "
            "types need an InMemory online store (with no offline store on AWS). Leave that feature file out of "
            "the deployed features, or create its group with the SageMaker API first.")
    return {
        "feature_group_name": definition.name,
        "record_identifier_feature_name": definition.record_identifier,
        "event_time_feature_name": definition.event_time_feature,
        "feature_definitions": [sagemaker.CfnFeatureGroup.FeatureDefinitionProperty(
            feature_name=item["FeatureName"], feature_type=item["FeatureType"])
            for item in definition.feature_definitions()],
        "online_store_config": {"EnableOnlineStore": True, "SecurityConfig": {"KmsKeyId": key_arn}},
        "offline_store_config": {"S3StorageConfig": {"S3Uri": offline_uri, "KmsKeyId": key_arn},
                                 "DisableGlueTableCreation": False},
        "role_arn": role_arn,
        "description": definition.description,
    }


class FeatureStoreStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, settings: InfraSettings,
                 feature_groups: list[FeatureGroupDefinition], access_logs: s3.IBucket, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.key = kms.Key(self, "FeatureStoreKey", enable_key_rotation=True,
                           description="chainfeat: feature store (online and offline)")
        self.offline_bucket = secure_bucket(self, "OfflineStore", self.key, access_logs)
        self.role = iam.Role(self, "FeatureStoreRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                             description="SageMaker Feature Store: writes the offline store, registers Glue tables")
        self.offline_bucket.grant_read_write(self.role)
        self.key.grant_encrypt_decrypt(self.role)
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["glue:GetTable", "glue:CreateTable", "glue:UpdateTable", "glue:GetDatabase",
                     "glue:CreateDatabase"],
            resources=[
                self.format_arn(service="glue", resource="catalog"),
                self.format_arn(service="glue", resource="database", resource_name="sagemaker_featurestore"),
                self.format_arn(service="glue", resource="table", resource_name="sagemaker_featurestore/*"),
            ],
        ))
        self.groups = {}
        for definition in feature_groups:
            group = sagemaker.CfnFeatureGroup(self, f"FeatureGroup-{definition.name}", **feature_group_properties(
                definition, self.offline_bucket.s3_url_for_object("offline"), self.key.key_arn, self.role.role_arn))
            group.node.add_dependency(self.role)
            group.apply_removal_policy(RemovalPolicy.RETAIN)
            self.groups[definition.name] = group
        self.offline_uri = self.offline_bucket.s3_url_for_object("offline")
        self._compaction_job(settings)

    def _compaction_job(self, settings: InfraSettings) -> None:
        """A Glue Python shell job running compaction.py on the offline store, on a schedule."""
        script = s3_assets.Asset(self, "CompactionScript",
                                 path=str(REPO_ROOT / "connectors" / "featurestore" / "compaction.py"))
        role = iam.Role(self, "CompactionRole", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
                        description="Glue: compacts the offline store's small Parquet files")
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"],
                                               resources=[script.bucket.arn_for_objects(script.s3_object_key)]))
        self.offline_bucket.grant_read_write(role)  # read, write the compacted file, delete its inputs
        self.key.grant_encrypt_decrypt(role)
        log_groups = self.format_arn(service="logs", resource="log-group", resource_name="/aws-glue/*",
                                     arn_format=ArnFormat.COLON_RESOURCE_NAME)
        role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
            resources=[log_groups, f"{log_groups}:*"]))
        # Glue encrypts the job's logs and bookmarks with the feature store key; CloudWatch Logs must use it.
        self.key.grant_encrypt_decrypt(iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com"))
        security = glue.CfnSecurityConfiguration(
            self, "CompactionSecurity", name=f"{settings.prefix}-compaction",
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=self.key.key_arn),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=self.key.key_arn),
                s3_encryptions=[glue.CfnSecurityConfiguration.S3EncryptionProperty(
                    s3_encryption_mode="SSE-KMS", kms_key_arn=self.key.key_arn)]))
        self.compaction_job = glue.CfnJob(
            self, "CompactionJob", name=f"{settings.prefix}-compact-offline-store", role=role.role_arn,
            command=glue.CfnJob.JobCommandProperty(name="pythonshell", python_version="3.9",
                                                   script_location=script.s3_object_url),
            glue_version="3.0", max_capacity=0.0625, max_retries=0, timeout=60,
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=1),
            security_configuration=security.name,
            default_arguments={"--offline_store_uri": self.offline_uri,
                               "--min_age_hours": str(settings.compaction_min_age_hours),
                               "library-set": "analytics"},  # Glue's Python shell set that includes pyarrow
            description="chainfeat: one Parquet file per closed hour partition of the offline store",
        )
        self.compaction_job.add_resource_dependency(security)
        self.compaction_job.node.add_dependency(role)
        glue.CfnTrigger(
            self, "CompactionSchedule", name=f"{settings.prefix}-compact-hourly", type="SCHEDULED",
            schedule=settings.compaction_schedule, start_on_creation=True,
            actions=[glue.CfnTrigger.ActionProperty(job_name=self.compaction_job.ref)])
