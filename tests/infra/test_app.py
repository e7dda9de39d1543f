"""The CDK app synthesizes offline with every cdk-nag finding acknowledged; its stacks hold what the
issues ask, IAM scoped to the named resources, the feature group equal to the job's."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Match, Template  # noqa: E402

from infra.app import build_app  # noqa: E402
from tests.conftest import REPO_ROOT  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    app, stacks = build_app(cdk.App(outdir=str(tmp_path_factory.mktemp("cdk.out"))))
    app.synth()  # cdk-nag runs as a validation plugin: an unacknowledged finding raises here
    return stacks


@pytest.fixture(scope="module")
def ingestion(synthesized) -> Template:
    return Template.from_stack(synthesized["ingestion"])


def test_cdk_json_runs_this_app() -> None:
    assert json.loads((REPO_ROOT / "cdk.json").read_text())["app"] == "python -m infra.app"


def test_stream_is_on_demand_and_kms_encrypted(ingestion) -> None:
    ingestion.has_resource_properties("AWS::Kinesis::Stream", {
        "Name": "chainfeat-ingest",
        "StreamModeDetails": {"StreamMode": "ON_DEMAND"},
        "StreamEncryption": {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
    })


def test_firehose_archives_to_date_hour_partitions_in_an_encrypted_bucket(ingestion) -> None:
    ingestion.has_resource_properties("AWS::KinesisFirehose::DeliveryStream", {
        "DeliveryStreamType": "KinesisStreamAsSource",
        "ExtendedS3DestinationConfiguration": Match.object_like({
            "Prefix": "raw/date=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/",
            "CompressionFormat": "GZIP",
        }),
    })
    ingestion.has_resource_properties("AWS::S3::Bucket", {
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [Match.object_like(
            {"ServerSideEncryptionByDefault": Match.object_like({"SSEAlgorithm": "aws:kms"})})]},
        "LifecycleConfiguration": {"Rules": [Match.object_like({"Status": "Enabled", "Transitions": Match.any_value()})]},
        "PublicAccessBlockConfiguration": Match.object_like({"BlockPublicAcls": True, "RestrictPublicBuckets": True}),
    })


def test_poller_runs_on_fargate_and_may_only_put_records_on_the_stream(ingestion) -> None:
    ingestion.has_resource_properties("AWS::ECS::Service", {"LaunchType": "FARGATE", "DesiredCount": 1})
    ingestion.has_resource_properties("AWS::ECS::TaskDefinition", {
        "ContainerDefinitions": [Match.object_like({
            "Environment": Match.array_with([Match.object_like({"Name": "CHAINFEAT_STREAM"})]),
        })],
    })
    task_role_policies = [
        policy for policy in ingestion.find_resources("AWS::IAM::Policy").values()
        if "TaskRole" in json.dumps(policy["Properties"]["Roles"])
    ]
    (policy,) = task_role_policies
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert sorted(statement["Action"]) == ["kinesis:DescribeStreamSummary", "kinesis:PutRecord", "kinesis:PutRecords"]
    (stream_id,) = ingestion.find_resources("AWS::Kinesis::Stream")
    assert statement["Resource"] == {"Fn::GetAtt": [stream_id, "Arn"]}
    ingestion.has_resource_properties("AWS::EC2::SecurityGroup", {
        "GroupDescription": "chainfeat poller: outbound HTTPS only, no ingress",
        "SecurityGroupEgress": [Match.object_like({"CidrIp": "0.0.0.0/0", "FromPort": 443, "ToPort": 443,
                                                   "IpProtocol": "tcp"})],
    })
    assert "SecurityGroupIngress" not in json.dumps(ingestion.find_resources("AWS::EC2::SecurityGroup"))


@pytest.fixture(scope="module")
def feature_store(synthesized) -> Template:
    return Template.from_stack(synthesized["feature_store"])


def test_feature_group_equals_what_the_job_writes(feature_store, tmp_path_factory) -> None:
    """The CloudFormation feature group and the running job's feature group come from the same SQL."""
    from job.config import JobConfig, load_property_groups
    from job.pipeline import build_pipeline

    config = JobConfig.from_properties(load_property_groups(), tmp_path_factory.mktemp("job"),
                                       featurestore_endpoint_url="http://127.0.0.1:9")
    (job_group,) = build_pipeline(config).feature_groups
    (group,) = feature_store.find_resources("AWS::SageMaker::FeatureGroup").values()
    properties = group["Properties"]
    assert properties["FeatureGroupName"] == job_group.name == "tx_minute_features"
    assert properties["RecordIdentifierFeatureName"] == job_group.record_identifier == "tx_minute"
    assert properties["EventTimeFeatureName"] == job_group.event_time_feature == "event_time"
    assert properties["FeatureDefinitions"] == job_group.feature_definitions()
    assert [d["FeatureType"] for d in properties["FeatureDefinitions"]] == [
        "String", "Fractional", "Integral", "Integral", "Fractional"]
    # PascalCase store configs (camelCase would be rejected by CloudFormation), KMS on both stores.
    assert properties["OnlineStoreConfig"]["EnableOnlineStore"] is True
    assert "KmsKeyId" in properties["OnlineStoreConfig"]["SecurityConfig"]
    assert set(properties["OfflineStoreConfig"]["S3StorageConfig"]) == {"S3Uri", "KmsKeyId"}
