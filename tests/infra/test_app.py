"""The CDK app synthesizes offline with every cdk-nag finding acknowledged; its stacks hold what the
issues ask, IAM scoped to the named resources, the feature group equal to the job's."""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from connectors.featurestore.client import JOB_IAM_ACTIONS, FeatureStoreClient, FeatureStoreConfig
from connectors.featurestore.model import FeatureType
from tests.support.feature_rows import DEFINITION, GROUP, feature_rows

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Match, Template  # noqa: E402

from infra.app import build_app  # noqa: E402
from job.deploy.package import build_zip, zip_run_options  # noqa: E402
from job.flow.config import (
    RUN_OPTIONS_GROUP,  # noqa: E402
    load_property_groups,  # noqa: E402
)
from job.flow.sql_pipeline import DUPLICATES_SINK  # noqa: E402
from tests.conftest import REPO_ROOT  # noqa: E402

# One test worker takes the whole module ("make test" runs them in parallel): the module's CDK synthesis runs once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cdk-app")]


FLINK_PARALLELISM = 3  # not the default: shows the context setting reaches the application


@pytest.fixture(scope="module")
def job_zip(tmp_path_factory) -> Path:
    """The real application zip (`chainfeat package`), with a stand-in for the connector jar (no Maven here)."""
    scratch = tmp_path_factory.mktemp("package")
    jar = scratch / "flink-sql-connector-aws-kinesis-streams-6.0.0-2.0.jar"
    with zipfile.ZipFile(jar, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
    build_zip(scratch / "chainfeat-flink-app.zip", [jar])
    return scratch / "chainfeat-flink-app.zip"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory, job_zip):
    context = {"job_zip": str(job_zip), "flink_parallelism": FLINK_PARALLELISM, "alarm_email": "ops@example.com"}
    app, stacks = build_app(cdk.App(outdir=str(tmp_path_factory.mktemp("cdk.out")), context=context))
    app.synth()  # cdk-nag runs as a validation plugin: an unacknowledged finding raises here
    return stacks


@pytest.fixture(scope="module")
def ingestion(synthesized) -> Template:
    return Template.from_stack(synthesized["ingestion"])


def test_cdk_json_runs_this_app() -> None:
    assert json.loads((REPO_ROOT / "cdk.json").read_text())["app"] == "python -m infra.app"


def test_stream_is_one_provisioned_shard_and_kms_encrypted(ingestion) -> None:
    # One shard: the poller keeps the polls in order on it (connectors/kinesis/producer.py).
    ingestion.has_resource_properties("AWS::Kinesis::Stream", {
        "Name": "chainfeat-ingest",
        "StreamModeDetails": {"StreamMode": "PROVISIONED"},
        "ShardCount": 1,
        "RetentionPeriodHours": 24,
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
    put_records, put_metrics = policy["Properties"]["PolicyDocument"]["Statement"]
    assert sorted(put_records["Action"]) == ["kinesis:DescribeStreamSummary", "kinesis:PutRecord"]
    (stream_id,) = ingestion.find_resources("AWS::Kinesis::Stream")
    assert put_records["Resource"] == {"Fn::GetAtt": [stream_id, "Arn"]}
    # Its metrics: PutMetricData cannot be scoped to a resource, so it is held to the poller's namespace.
    assert put_metrics["Action"] == "cloudwatch:PutMetricData"
    assert put_metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "chainfeat/Poller"}}
    ingestion.has_resource_properties("AWS::EC2::SecurityGroup", {
        "GroupDescription": "chainfeat poller: outbound HTTPS only, no ingress",
        "SecurityGroupEgress": [Match.object_like({"CidrIp": "0.0.0.0/0", "FromPort": 443, "ToPort": 443,
                                                   "IpProtocol": "tcp"})],
    })
    assert "SecurityGroupIngress" not in json.dumps(ingestion.find_resources("AWS::EC2::SecurityGroup"))


def test_poller_image_is_the_dockerfiles_poller_target(synthesized) -> None:
    stack = synthesized["ingestion"]
    outdir = Path(cdk.Stage.of(stack).outdir)
    (image,) = json.loads((outdir / f"{stack.artifact_id}.assets.json").read_text())["dockerImages"].values()
    assert image["source"]["dockerFile"] == "Dockerfile"
    assert image["source"]["dockerBuildTarget"] == "poller"  # the stage tests/test_dockerfiles.py follows
    assert (outdir / image["source"]["directory"] / "Dockerfile").is_file()


def test_the_flink_role_allows_exactly_the_feature_store_calls_the_job_makes(server) -> None:
    """What the job does on AWS, through the same client against the local store: the group exists (the CDK app
    made it), the entry point adds a feature a feature file gained, the writer writes windows, then meets them
    again after a restore. Every call must be granted, and nothing else is."""
    FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url)).ensure_feature_group(DEFINITION)
    job = FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url))
    called: set[str] = set()
    for botocore_client in (job.runtime, job.control):
        botocore_client.meta.events.register("before-call", lambda model, **_: called.add(f"sagemaker:{model.name}"))
    grown = replace(DEFINITION, features={**DEFINITION.features, "max_fee_1min": FeatureType.INTEGRAL})
    job.ensure_feature_group(grown)
    rows = [{**row, "max_fee_1min": 7} for row in feature_rows(30)]
    assert job.put_new_records(GROUP, rows) == 30
    assert job.put_new_records(GROUP, rows) == 0  # re-emitted after a restore: read, not written again
    assert called == set(JOB_IAM_ACTIONS)


@pytest.fixture(scope="module")
def feature_store(synthesized) -> Template:
    return Template.from_stack(synthesized["feature_store"])


def test_feature_group_equals_what_the_job_writes(feature_store, tmp_path_factory) -> None:
    """The CloudFormation feature group and the running job's feature group come from the same SQL."""
    from job.flow.config import JobConfig, load_property_groups
    from job.flow.pipeline import build_pipeline

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


@pytest.fixture(scope="module")
def processing(synthesized) -> Template:
    return Template.from_stack(synthesized["processing"])


def flink_application(processing: Template) -> dict:
    (application,) = processing.find_resources("AWS::KinesisAnalyticsV2::Application").values()
    return application["Properties"]


def test_flink_application_has_the_jobs_property_groups(processing, job_zip) -> None:
    """The same properties file the job reads locally; only the deployment section differs on AWS."""
    properties = flink_application(processing)
    deployed = {group["PropertyGroupId"]: group["PropertyMap"]
                for group in properties["ApplicationConfiguration"]["EnvironmentProperties"]["PropertyGroups"]}
    local = load_property_groups()
    assert set(deployed) == set(local) | {RUN_OPTIONS_GROUP}
    # watermark, dedup TTL, ... exactly as in the file (less unset, empty values: the service rejects them)
    assert deployed["Job"] == {key: value for key, value in local["Job"].items() if value}
    assert deployed[RUN_OPTIONS_GROUP] == zip_run_options(job_zip) == {
        "python": "main.py", "pyFiles": "site-packages/,worker-code/",
        "jarfile": "lib/" + "flink-sql-connector-aws-kinesis-streams-6.0.0-2.0.jar"}
    source = deployed["Source"]
    assert source["type"] == "kinesis" and source["aws.region"] == {"Ref": "AWS::Region"}
    assert "IngestStream" in json.dumps(source["stream.arn"])  # the ingestion stack's stream
    (outputs_bucket,) = [name for name in processing.find_resources("AWS::S3::Bucket") if name.startswith("JobOutputs")]
    assert deployed["Outputs"] == {
        "dead.letter.path": {"Fn::Join": ["", ["s3://", {"Ref": outputs_bucket}, "/dead_letter"]]},
        "late.path": {"Fn::Join": ["", ["s3://", {"Ref": outputs_bucket}, "/late"]]},
    }
    # The real service (no endpoint) in the stack's region; the file's other settings kept key by key.
    assert deployed["FeatureStore"] == {**{key: value for key, value in local["FeatureStore"].items() if value},
                                        "region": {"Ref": "AWS::Region"}}
    assert "endpoint.url" not in deployed["FeatureStore"] and "write.retry.timeout.s" in deployed["FeatureStore"]


def test_flink_application_runs_the_zip_with_checkpoints_snapshots_and_logs(processing) -> None:
    properties = flink_application(processing)
    configuration = properties["ApplicationConfiguration"]
    assert properties["RuntimeEnvironment"] == "FLINK-2_3"
    code = configuration["ApplicationCodeConfiguration"]
    assert code["CodeContentType"] == "ZIPFILE" and code["CodeContent"]["S3ContentLocation"]["FileKey"].endswith(".zip")
    flink = configuration["FlinkApplicationConfiguration"]
    assert flink["CheckpointConfiguration"] == {"ConfigurationType": "CUSTOM", "CheckpointingEnabled": True,
                                                "CheckpointInterval": 10_000,  # '10 s' in the properties file
                                                "MinPauseBetweenCheckpoints": 5000}
    assert flink["ParallelismConfiguration"]["Parallelism"] == FLINK_PARALLELISM
    assert flink["MonitoringConfiguration"]["MetricsLevel"] == "OPERATOR"  # per-operator records in/out
    assert configuration["ApplicationSnapshotConfiguration"] == {"SnapshotsEnabled": True}
    assert properties["RunConfiguration"]["ApplicationRestoreConfiguration"] == {
        "ApplicationRestoreType": "RESTORE_FROM_LATEST_SNAPSHOT"}
    (logging,) = processing.find_resources("AWS::KinesisAnalyticsV2::ApplicationCloudWatchLoggingOption").values()
    assert "FlinkLogStream" in json.dumps(logging["Properties"]["CloudWatchLoggingOption"]["LogStreamARN"])


def test_flink_role_reaches_only_its_code_stream_outputs_and_feature_group(processing) -> None:
    statements = [statement for policy in processing.find_resources("AWS::IAM::Policy").values()
                  if "FlinkRole" in json.dumps(policy["Properties"]["Roles"])
                  for statement in policy["Properties"]["PolicyDocument"]["Statement"]]
    by_action = {json.dumps(sorted(statement["Action"]) if isinstance(statement["Action"], list)
                            else [statement["Action"]]): statement for statement in statements}
    put_record = by_action[json.dumps(sorted(JOB_IAM_ACTIONS))]
    assert put_record["Resource"] == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":sagemaker:",
                                                        {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
                                                        ":feature-group/tx_minute_features"]]}
    code_read = by_action['["s3:GetObject", "s3:GetObjectVersion"]']
    assert code_read["Resource"]["Fn::Join"][1][-1].endswith(".zip")  # the zip's object, not the assets bucket
    assert json.dumps(by_action['["logs:PutLogEvents"]']["Resource"]).count("log-stream") == 1
    stream_actions = {action for statement in statements for action in
                      (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
                      if action.startswith("kinesis:")}
    assert stream_actions and all(not action.startswith("kinesis:Put") for action in stream_actions)
    assert not any(statement["Resource"] == "*" for statement in statements)


@pytest.fixture(scope="module")
def monitoring(synthesized) -> Template:
    return Template.from_stack(synthesized["monitoring"])


def test_dashboard_shows_the_whole_flow(monitoring) -> None:
    (dashboard,) = monitoring.find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for shown in ("IncomingBytes",  # bytes into the stream
                  "Polls", "Gaps", "PollErrors",  # the poller
                  "numRecordsInPerSecond", "numRecordsOutPerSecond",  # Flink, per operator
                  DUPLICATES_SINK,  # duplicates dropped: their sink's records in
                  "late_records", "dead_letter_records", "lastCheckpointDuration",
                  "put_latency_ms", "Operation5XXErrors", "freshness_s", "features_written"):
        assert shown in body, shown


def test_alarms_on_job_down_no_features_and_dead_letter_spikes(monitoring) -> None:
    alarms = {alarm["Properties"]["AlarmName"]: alarm["Properties"]
              for alarm in monitoring.find_resources("AWS::CloudWatch::Alarm").values()}
    assert set(alarms) == {"chainfeat-job-down", "chainfeat-no-features", "chainfeat-dead-letter-spike",
                           "chainfeat-poller-silent", "chainfeat-stream-near-shard-limit"}
    assert alarms["chainfeat-job-down"]["MetricName"] == "runningTime"  # Flink 2.x: uptime is deprecated
    assert alarms["chainfeat-job-down"]["TreatMissingData"] == "breaching"  # no metrics = not running
    no_features = alarms["chainfeat-no-features"]
    assert "SUM(features_written)" in no_features["Metrics"][0]["Expression"]
    assert no_features["Metrics"][0]["Period"] == 300 and no_features["TreatMissingData"] == "breaching"
    spike = alarms["chainfeat-dead-letter-spike"]
    assert "SUM(dead_letter_records)" in spike["Metrics"][0]["Expression"]
    assert spike["ComparisonOperator"] == "GreaterThanThreshold" and spike["Threshold"] == 50
    # The stream's one shard: alarmed at half its write limit, by bytes (1 MiB/s) or records (1000/s) a minute.
    near_limit = alarms["chainfeat-stream-near-shard-limit"]
    (expression,) = [metric for metric in near_limit["Metrics"] if "Expression" in metric]
    assert expression["Expression"] == "100 * MAX([bytes / 62914560, records / 60000])"
    assert {metric["Id"]: metric["MetricStat"]["Metric"]["MetricName"] for metric in near_limit["Metrics"]
            if "MetricStat" in metric} == {"bytes": "IncomingBytes", "records": "IncomingRecords"}
    assert (near_limit["Threshold"], near_limit["EvaluationPeriods"]) == (50, 5)
    (topic_id,) = monitoring.find_resources("AWS::SNS::Topic")
    assert all(alarm["AlarmActions"] == [{"Ref": topic_id}] for alarm in alarms.values())
    monitoring.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    monitoring.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"})


def test_application_is_started_once_after_it_is_created(processing) -> None:
    (start,) = processing.find_resources("Custom::AWS").values()
    call = json.loads(start["Properties"]["Create"])
    assert (call["service"], call["action"]) == ("KinesisAnalyticsV2", "startApplication")
    assert call["parameters"]["RunConfiguration"]["ApplicationRestoreConfiguration"] == {
        "ApplicationRestoreType": "RESTORE_FROM_LATEST_SNAPSHOT"}
    assert "Update" not in start["Properties"]  # later deploys update the running application in place
    assert any("FlinkLogging" in dependency for dependency in start["DependsOn"])


def test_glue_job_compacts_the_offline_store_hourly_with_the_repos_script(synthesized, feature_store) -> None:
    (job,) = feature_store.find_resources("AWS::Glue::Job").values()
    properties = job["Properties"]
    assert properties["Command"]["Name"] == "pythonshell" and properties["Command"]["PythonVersion"] == "3.9"
    # The script is connectors/featurestore/compaction.py itself, staged as a file asset named by its hash.
    asset_hash = properties["Command"]["ScriptLocation"]["Fn::Sub"].rsplit("/", 1)[1].removesuffix(".py")
    staged = Path(cdk.Stage.of(synthesized["feature_store"]).outdir) / f"asset.{asset_hash}.py"
    assert staged.read_bytes() == (REPO_ROOT / "connectors" / "featurestore" / "compaction.py").read_bytes()
    arguments = properties["DefaultArguments"]
    assert arguments["--min_age_hours"] == "2" and arguments["library-set"] == "analytics"
    (offline_bucket,) = [name for name in feature_store.find_resources("AWS::S3::Bucket") if name.startswith("OfflineStore")]
    assert arguments["--offline_store_uri"] == {"Fn::Join": ["", ["s3://", {"Ref": offline_bucket}, "/offline"]]}
    (group,) = feature_store.find_resources("AWS::SageMaker::FeatureGroup").values()
    assert group["Properties"]["OfflineStoreConfig"]["S3StorageConfig"]["S3Uri"] == arguments["--offline_store_uri"]
    assert properties["ExecutionProperty"] == {"MaxConcurrentRuns": 1}  # never two compactions at once
    feature_store.has_resource_properties("AWS::Glue::SecurityConfiguration", {"EncryptionConfiguration": {
        "CloudWatchEncryption": Match.object_like({"CloudWatchEncryptionMode": "SSE-KMS"}),
        "JobBookmarksEncryption": Match.object_like({"JobBookmarksEncryptionMode": "CSE-KMS"}),
        "S3Encryptions": [Match.object_like({"S3EncryptionMode": "SSE-KMS"})]}})
    (job_id,) = feature_store.find_resources("AWS::Glue::Job")
    feature_store.has_resource_properties("AWS::Glue::Trigger", {
        "Type": "SCHEDULED", "Schedule": "cron(20 * * * ? *)", "StartOnCreation": True,
        "Actions": [{"JobName": {"Ref": job_id}}]})
