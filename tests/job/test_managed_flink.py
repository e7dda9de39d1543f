"""Deploying to Managed Service for Apache Flink: S3 upload against moto's server; the
kinesisanalyticsv2 calls with botocore's Stubber (moto implements neither Start nor Update). And what the
job sets on the service: only keys of its "Programmatic Flink configuration properties" list."""

from __future__ import annotations

import json
import re
import zipfile

import boto3
import pytest
from botocore.stub import ANY, Stubber

from job.deploy.managed_flink import DeployError, ManagedFlinkTarget, deploy, property_groups
from job.flow.config import RUN_OPTIONS_GROUP, Deployment, JobConfig, load_property_groups
from job.flow.flink_settings import flink_settings
from job.flow.managed_keys import PLANNER_BATCH_KEYS, PROGRAMMATIC_KEYS_FILE, UnlistedSetting, programmatic_keys

RUN_OPTIONS = {"python": "main.py", "jarfile": "lib/connector.jar", "pyFiles": "site-packages/,worker-code/"}
TARGET = ManagedFlinkTarget("chainfeat", "artifacts", "chainfeat/app.zip", "arn:aws:iam::123456789012:role/flink")
APP_ARN = "arn:aws:kinesisanalytics:us-east-1:123456789012:application/chainfeat"


def detail(status: str, version: int = 1) -> dict:
    return {"ApplicationDetail": {
        "ApplicationARN": APP_ARN, "ApplicationName": "chainfeat", "RuntimeEnvironment": "FLINK-2_3",
        "ApplicationStatus": status, "ApplicationVersionId": version,
    }}


def listed(status: str, version: int) -> dict:
    return {"ApplicationSummaries": [{"ApplicationName": "chainfeat", "ApplicationARN": APP_ARN,
                                      "ApplicationStatus": status, "ApplicationVersionId": version,
                                      "RuntimeEnvironment": "FLINK-2_3"}]}


@pytest.fixture
def s3(moto_url, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url)
    client.create_bucket(Bucket="artifacts")
    return client


@pytest.fixture
def app_zip(tmp_path):
    path = tmp_path / "app.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("main.py", "print('hello')\n")
    return path


@pytest.fixture
def flink():
    client = boto3.client("kinesisanalyticsv2", region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_creates_uploads_starts_and_waits_until_running(s3, flink, app_zip) -> None:
    client, stubber = flink
    groups = load_property_groups()
    stubber.add_response("list_applications", {"ApplicationSummaries": []}, {})
    stubber.add_response("create_application", detail("READY"), {
        "ApplicationName": "chainfeat", "RuntimeEnvironment": "FLINK-2_3",
        "ServiceExecutionRole": TARGET.role_arn, "ApplicationConfiguration": ANY,
    })
    stubber.add_response("describe_application", detail("READY"), {"ApplicationName": "chainfeat"})
    stubber.add_response("start_application", {}, {"ApplicationName": "chainfeat", "RunConfiguration": ANY})
    stubber.add_response("describe_application", detail("STARTING"), {"ApplicationName": "chainfeat"})
    stubber.add_response("describe_application", detail("RUNNING"), {"ApplicationName": "chainfeat"})
    messages: list[str] = []
    final = deploy(app_zip, RUN_OPTIONS, groups, TARGET, s3, client, progress=messages.append, sleep=lambda s: None)
    assert final["ApplicationStatus"] == "RUNNING"
    assert s3.get_object(Bucket="artifacts", Key="chainfeat/app.zip")["Body"].read() == app_zip.read_bytes()
    assert messages[0].startswith("uploading") and messages[-1] == "chainfeat: RUNNING"

    groups_api = property_groups(groups, RUN_OPTIONS)
    by_id = {group["PropertyGroupId"]: group["PropertyMap"] for group in groups_api}
    assert by_id[RUN_OPTIONS_GROUP] == RUN_OPTIONS
    # The one properties file, less its unset (empty) values, which the service would reject.
    assert {k: v for k, v in by_id.items() if k != RUN_OPTIONS_GROUP} == {
        name: {key: value for key, value in values.items() if value} for name, values in groups.items()
    }
    assert "endpoint.url" not in by_id["FeatureStore"]


def test_updates_a_running_application_in_place(s3, flink, app_zip) -> None:
    client, stubber = flink
    stubber.add_response("list_applications", listed("RUNNING", 7), {})
    stubber.add_response("describe_application", detail("RUNNING", version=7), {"ApplicationName": "chainfeat"})
    stubber.add_response("update_application", detail("UPDATING", version=8), {
        "ApplicationName": "chainfeat", "CurrentApplicationVersionId": 7, "ApplicationConfigurationUpdate": {
            "ApplicationCodeConfigurationUpdate": {
                "CodeContentTypeUpdate": "ZIPFILE",
                "CodeContentUpdate": {"S3ContentLocationUpdate": {"BucketARNUpdate": "arn:aws:s3:::artifacts",
                                                                  "FileKeyUpdate": "chainfeat/app.zip"}},
            },
            "EnvironmentPropertyUpdates": {"PropertyGroups": property_groups({}, RUN_OPTIONS)},
            # What the job may not set itself there: checkpoints every Job checkpoint.interval (10 s in the
            # defaults file), the parallelism, operator-level metrics.
            "FlinkApplicationConfigurationUpdate": {
                "CheckpointConfigurationUpdate": {"ConfigurationTypeUpdate": "CUSTOM", "CheckpointingEnabledUpdate": True,
                                                  "CheckpointIntervalUpdate": 10_000,
                                                  "MinPauseBetweenCheckpointsUpdate": 5000},
                "MonitoringConfigurationUpdate": {"ConfigurationTypeUpdate": "CUSTOM", "LogLevelUpdate": "INFO",
                                                  "MetricsLevelUpdate": "OPERATOR"},
                "ParallelismConfigurationUpdate": {"ConfigurationTypeUpdate": "CUSTOM", "ParallelismUpdate": 1,
                                                   "ParallelismPerKPUUpdate": 1, "AutoScalingEnabledUpdate": False},
            },
        },
    })
    stubber.add_response("describe_application", detail("UPDATING", version=8), {"ApplicationName": "chainfeat"})
    stubber.add_response("describe_application", detail("RUNNING", version=8), {"ApplicationName": "chainfeat"})
    final = deploy(app_zip, RUN_OPTIONS, {}, TARGET, s3, client, sleep=lambda s: None)
    assert (final["ApplicationStatus"], final["ApplicationVersionId"]) == ("RUNNING", 8)


def test_a_start_that_falls_back_to_ready_is_a_clear_failure(s3, flink, app_zip) -> None:
    client, stubber = flink
    stubber.add_response("list_applications", listed("READY", 1), {})
    stubber.add_response("describe_application", detail("READY"), {"ApplicationName": "chainfeat"})
    stubber.add_response("update_application", detail("READY", 2), {
        "ApplicationName": "chainfeat", "CurrentApplicationVersionId": 1, "ApplicationConfigurationUpdate": ANY})
    stubber.add_response("describe_application", detail("READY", 2), {"ApplicationName": "chainfeat"})
    stubber.add_response("start_application", {}, {"ApplicationName": "chainfeat", "RunConfiguration": ANY})
    stubber.add_response("describe_application", detail("STARTING", 2), {"ApplicationName": "chainfeat"})
    stubber.add_response("describe_application", detail("READY", 2), {"ApplicationName": "chainfeat"})
    with pytest.raises(DeployError, match="went back to READY.*CloudWatch Logs"):
        deploy(app_zip, RUN_OPTIONS, {}, TARGET, s3, client, sleep=lambda s: None)


def test_refuses_to_update_an_application_in_transition(s3, flink, app_zip) -> None:
    client, stubber = flink
    stubber.add_response("list_applications", listed("DELETING", 1), {})
    stubber.add_response("describe_application", detail("DELETING"), {"ApplicationName": "chainfeat"})
    with pytest.raises(DeployError, match="is DELETING"):
        deploy(app_zip, RUN_OPTIONS, {}, TARGET, s3, client, sleep=lambda s: None)


def test_create_request_is_accepted_by_moto_with_the_property_groups(s3, moto_url, app_zip) -> None:
    """moto implements CreateApplication and DescribeApplication (not Start): the create request must be
    one its server accepts, and what it stores must be the zip's location and our property groups."""
    client = boto3.client("kinesisanalyticsv2", region_name="us-east-1", endpoint_url=moto_url)
    groups = {"Source": {"type": "spool", "feed.path": "feed", "monitor.interval.s": ""}}
    # moto leaves a new application STARTING forever: give the wait no time and expect that report.
    with pytest.raises(DeployError, match="still STARTING"):
        deploy(app_zip, RUN_OPTIONS, groups, TARGET, s3, client, timeout_s=0, sleep=lambda s: None)
    stored = client.describe_application(ApplicationName="chainfeat")["ApplicationDetail"]
    assert stored["RuntimeEnvironment"] == "FLINK-2_3"
    assert stored["ServiceExecutionRole"] == TARGET.role_arn
    configuration = stored["ApplicationConfigurationDescription"]
    location = configuration["ApplicationCodeConfigurationDescription"]["CodeContentDescription"]["S3ApplicationCodeLocationDescription"]
    assert (location["BucketARN"], location["FileKey"]) == ("arn:aws:s3:::artifacts", "chainfeat/app.zip")
    stored_groups = {g["PropertyGroupId"]: g["PropertyMap"]
                     for g in configuration["EnvironmentPropertyDescriptions"]["PropertyGroupDescriptions"]}
    assert stored_groups == {"Source": {"type": "spool", "feed.path": "feed"}, RUN_OPTIONS_GROUP: RUN_OPTIONS}
    # The job's checkpoint interval ('10 s' in the defaults file) goes to the service, which checkpoints.
    service = configuration["FlinkApplicationConfigurationDescription"]
    assert service["CheckpointConfigurationDescription"]["CheckpointInterval"] == 10_000
    assert service["ParallelismConfigurationDescription"]["Parallelism"] == TARGET.parallelism


# ---- what the job's code sets on the service ----

def test_the_list_is_kept_with_its_source() -> None:
    document = json.loads(PROGRAMMATIC_KEYS_FILE.read_text())
    assert document["source"] == "https://docs.aws.amazon.com/managed-flink/latest/java/programmatic-configuration.html"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", document["read"])
    assert set(document["keys"]) == {"Pipeline configuration", "Network", "Python API", "Table API / SQL"}


def test_on_managed_flink_the_job_sets_only_keys_the_service_allows(tmp_path) -> None:
    config = JobConfig.from_properties(load_property_groups(), tmp_path)
    local, managed = flink_settings(config), flink_settings(config, deployment=Deployment.MANAGED)
    assert set(managed) <= programmatic_keys()
    # The plan is the same as locally: time zone, dedup TTL, idle sources, object and plan reuse.
    assert {key: local[key] for key in managed} == managed
    assert {"table.local-time-zone", "table.exec.state.ttl", "table.exec.source.idle-timeout",
            "pipeline.object-reuse", "table.optimizer.reuse-optimize-block-with-digest-enabled"} <= set(managed)
    # What locally needs keys off the list is left to the service: parallelism, checkpoints, restarts.
    left_out = set(local) - set(managed)
    assert {"parallelism.default", "execution.checkpointing.interval", "restart-strategy.type"} <= left_out
    assert not left_out & programmatic_keys()


def test_a_key_off_the_list_stops_the_managed_job_by_name(tmp_path) -> None:
    config = JobConfig.from_properties(load_property_groups(), tmp_path, extra_flink_config={"parallelism.default": "4"})
    assert flink_settings(config)["parallelism.default"] == "4"  # locally a run may set what it needs
    with pytest.raises(UnlistedSetting, match=r"does not let application code set parallelism.default \("):
        flink_settings(config, deployment=Deployment.MANAGED)
    restoring = JobConfig.from_properties(load_property_groups(), tmp_path, restore_from="file:///tmp/chk-1")
    with pytest.raises(UnlistedSetting, match="execution.savepoint.path"):
        flink_settings(restoring, deployment=Deployment.MANAGED)


@pytest.mark.slow
def test_the_managed_job_built_and_named_sets_nothing_off_the_list(tmp_path, monkeypatch) -> None:
    """The whole build as main.py does it on the service, with what PyFlink sets for the job's code on the
    table config (python.files from add_python_file, pipeline.name): nothing outside the list."""
    from job.flow.entrypoint import ship_worker_code
    from job.flow.pipeline import build_pipeline

    # On the service Python workers are processes; in this process PyFlink would set up a MiniCluster's
    # loopback workers (python.loopback-server.address), which only a local deployment does.
    monkeypatch.setenv("_python_worker_execution_mode", "process")

    config = JobConfig.from_properties(load_property_groups(), tmp_path, featurestore_endpoint_url="http://127.0.0.1:9")
    managed = build_pipeline(config, deployment=Deployment.MANAGED)
    ship_worker_code(managed)  # on the service the zip's run options carry the code (pyFiles)
    managed.prepare("chainfeat")
    managed.statement_set.compile_plan()  # what execute_async runs next: the job's compiled plan
    assert managed.set_by_the_job() <= programmatic_keys()
    assert "pipeline.name" in managed.set_by_the_job()
    # The same steps off the service ship the code with python.files, which the service would refuse.
    cluster = build_pipeline(config, deployment=Deployment.CLUSTER)
    ship_worker_code(cluster)
    assert "python.files" in cluster.set_by_the_job() - programmatic_keys()
    cluster.deployment = Deployment.MANAGED
    with pytest.raises(UnlistedSetting, match="python.files"):
        cluster.prepare("chainfeat")


@pytest.mark.slow
def test_the_managed_backfill_built_and_named_sets_nothing_off_the_list(tmp_path, monkeypatch) -> None:
    """What main.py builds on the service when the properties carry a Backfill archive.uri: the batch job, with the
    keys of a batch run (execution.runtime-mode among them) and nothing outside the list."""
    from job.flow.backfill import BackfillSettings, build_backfill
    from job.flow.entrypoint import ship_worker_code

    monkeypatch.setenv("_python_worker_execution_mode", "process")
    archive = tmp_path / "raw" / "date=2024-05-01" / "hour=09"
    archive.mkdir(parents=True)
    groups = {**load_property_groups(), "Backfill": {"archive.uri": (tmp_path / "raw").as_uri(),
                                                     "report.path": "s3://my-outputs/backfill", "from": "1714554000"}}
    settings = BackfillSettings.from_properties(groups, tmp_path)
    assert (settings.report_uri, settings.time_range.start_s) == ("s3://my-outputs/backfill", 1714554000.0)
    config = JobConfig.from_properties(groups, tmp_path, featurestore_endpoint_url="http://127.0.0.1:9")
    managed = build_backfill(config, settings, deployment=Deployment.MANAGED).pipeline
    ship_worker_code(managed)
    managed.prepare("chainfeat-backfill")
    # Off the list only what Flink's batch planner writes itself while it plans (job/flow/managed_keys.py).
    assert managed.set_by_the_job() - programmatic_keys() <= PLANNER_BATCH_KEYS
    assert not set(managed.flink_settings) - programmatic_keys()  # the job's own keys: all on the list
    assert managed.flink_settings["execution.runtime-mode"] == "batch"
    assert BackfillSettings.from_properties(load_property_groups(), tmp_path) is None  # the defaults run the stream
