"""Feature store: one SageMaker feature group per sql/features/*.sql view (online + offline, KMS),
defined from the view's output schema — the same derivation the job uses, so the two cannot disagree."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from connectors.featurestore.model import FeatureGroupDefinition
from infra.settings import InfraSettings
from infra.stacks.ingestion import secure_bucket


def feature_group_properties(definition: FeatureGroupDefinition, offline_uri: str, key_arn: str,
                             role_arn: str) -> dict:
    """CfnFeatureGroup properties. The store configs are plain PascalCase dicts: the *Property classes
    render camelCase, which CloudFormation rejects (DESIGN.md)."""
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
