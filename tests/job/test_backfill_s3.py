"""`chainfeat backfill --archive s3://...` as a user runs it (a subprocess), against moto's S3 server holding the archive
in the exact layout the CDK app's Firehose writes — its prefix, buffering interval and compression read from the
synthesized ingestion stack: the range's objects staged, the real batch job run over them, and the feature store
holding exactly the complete windows of the range as the independent reference computes them. A missing archive or a
range without objects is one error line and exit 1, before any job starts."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import boto3
import pytest

from connectors.blockchain.source import read_recording
from connectors.blockchain.synthetic import SyntheticProfile, write_recording
from job.local.data_dir import DataDir
from tests.conftest import CHAINFEAT
from tests.reference import expected_results
from tests.support import GROUP, cli_environment, error_lines, free_port
from tests.support.example_features import by_key, example_windows, newest_online, store_state
from tests.support.firehose import firehose_objects

WATERMARK_DELAY_S = 60  # job/flow/application_properties.json
START = 1714524720.0  # 2024-05-01 00:52:00 UTC: the polls cross an hour, and a Firehose object holds both hours' polls


@pytest.fixture(scope="module")
def firehose_delivery(tmp_path_factory) -> dict:
    """The Firehose delivery's S3 settings as the synthesized ingestion stack states them."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.settings import InfraSettings
    from infra.stacks.ingestion import IngestionStack

    app = cdk.App(outdir=str(tmp_path_factory.mktemp("cdk.out")))
    template = Template.from_stack(IngestionStack(app, "ingestion", InfraSettings()))
    [delivery] = template.find_resources("AWS::KinesisFirehose::DeliveryStream").values()
    return delivery["Properties"]["ExtendedS3DestinationConfiguration"]


@pytest.fixture
def archive_bucket(moto_url, monkeypatch) -> tuple[object, str, dict]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url)
    bucket = f"chainfeat-raw-archive-{os.urandom(4).hex()}"
    client.create_bucket(Bucket=bucket)
    env = {"AWS_ENDPOINT_URL_S3": moto_url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    return client, bucket, env


def backfill(env: dict, data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CHAINFEAT, "backfill", "--data-dir", str(data_dir), "--dashboard-port", str(free_port()),
                           *args], env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_range_of_the_firehose_archive_in_s3_is_staged_and_backfilled(firehose_delivery, archive_bucket, server, data_dir,
                                                                        tmp_path) -> None:
    assert firehose_delivery["CompressionFormat"] == "GZIP"  # what firehose_objects writes
    client, bucket, aws = archive_bucket
    recording = tmp_path / "recording.jsonl"
    write_recording(recording, SyntheticProfile(start=START, duration_s=900, seed=5))
    polls = list(read_recording(recording))
    objects = firehose_objects(polls, firehose_delivery["Prefix"], firehose_delivery["BufferingHints"]["IntervalInSeconds"])
    assert len({key.split("/hour=")[0] + key.split("/hour=")[1][:2] for key in objects}) == 2  # two hours' partitions
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    # An hour no transaction of the range can have been polled in, holding a copy of the first object: staged and
    # read, it would add lines.
    first_key = min(objects)
    decoy = first_key.replace("date=2024-05-01/hour=00", "date=2024-04-30/hour=20")
    client.put_object(Bucket=bucket, Key=decoy, Body=objects[first_key])

    first_poll = min(poll.polled_at for poll in polls)
    start, end = first_poll + 150.5, first_poll + 570.5
    root = firehose_delivery["Prefix"].split("/")[0]
    result = backfill({**cli_environment(data_dir), **aws}, data_dir, "--archive", f"s3://{bucket}/{root}",
                      "--from", str(start), "--to", str(end), "--endpoint-url", server.url, "--format", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)

    reference = expected_results([(poll.polled_at, json.loads(poll.page)) for poll in polls])
    last_watermark = max([int(poll.polled_at) for poll in polls] + [row["ts"] for row in reference.unique]) - WATERMARK_DELAY_S
    complete = [window.row for window in example_windows(reference.unique)[GROUP]
                if window.start >= max(first_poll, start) and window.end <= min(last_watermark, end)]
    assert len(complete) == 6  # 00:55 to 01:01
    state = store_state(data_dir, [GROUP], server)[GROUP]
    approx = {key: {name: pytest.approx(value, rel=1e-12) if isinstance(value, float) else value
                    for name, value in row.items()} for key, row in by_key(complete).items()}
    assert state["offline"] == approx
    assert state["online"] == {key: approx[(key, row["event_time"])] for key, row in newest_online(complete).items()}
    assert summary["windows_written"] == {GROUP: len(complete)}
    assert (summary["staged_objects"], summary["downloaded_objects"]) == (len(objects), len(objects))  # not the decoy
    assert summary["lines_read"] == sum(len(poll.lines.text.splitlines()) for poll in polls)
    assert summary["archive"] == f"s3://{bucket}/{root}"
    assert summary["staged_to"] == (DataDir(data_dir).archive_cache / bucket / root).as_posix()


@pytest.mark.parametrize(("archive", "args", "message"), [
    ("s3://{bucket}/raw/date=2024-05-01", (), "no archive at s3://{bucket}/raw/date=2024-05-01: it holds no "
                                              "date=YYYY-MM-DD/ partition (it holds hour=00/)"),
    ("s3://{bucket}/raw", ("--from", "2024-06-01T00:00:00Z", "--to", "2024-06-01T01:00:00Z"),
     "no objects in s3://{bucket}/raw from hour 2024-05-31 23 to 2024-06-15 01 UTC (what --from/--to can need); its "
     "partitions run from date=2024-05-01 to date=2024-05-01"),
])
def test_a_missing_archive_or_a_range_without_objects_is_one_error(archive_bucket, tmp_path, archive, args, message) -> None:
    client, bucket, aws = archive_bucket
    client.put_object(Bucket=bucket, Key="raw/date=2024-05-01/hour=00/chainfeat-1-2024-05-01-00-00-00-x.gz", Body=b"x")
    data_dir = tmp_path / "data"
    result = backfill({**cli_environment(data_dir), **aws}, data_dir, "--archive", archive.format(bucket=bucket), *args)
    assert result.returncode == 1, result.stderr[-3000:]
    [line] = error_lines(result.stderr)
    assert line.startswith(f"error: {message.format(bucket=bucket)}")
    assert not (data_dir / "logs").exists()  # nothing started: no Flink, no store
