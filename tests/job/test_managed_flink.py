"""Deploying to Managed Service for Apache Flink: S3 upload against moto's server; the
kinesisanalyticsv2 calls with botocore's Stubber (moto implements neither Start nor Update)."""

from __future__ import annotations

import zipfile

import boto3
import pytest
from botocore.stub import ANY, Stubber

from job.config import load_property_groups
from job.managed_flink import DeployError, ManagedFlinkTarget, deploy, property_groups
from job.package import RUN_OPTIONS_GROUP

RUN_OPTIONS = {"python": "main.py", "jarfile": "lib/connector.jar", "pyFiles": "site-packages/"}
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
