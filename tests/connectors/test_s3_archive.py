"""Staging the raw archive from S3 (moto's server) into a local cache: only the range's hours of the layout the CDK
app's Firehose writes, byte for byte; an interrupted staging resumed without downloading an object twice; an object
changed, damaged or deleted since staged as S3 holds it now. What the requests were is counted on the real client's
own events, not by the code under test."""

from __future__ import annotations

import os
import threading
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest

from connectors import s3_archive
from connectors.archive_layout import FIREHOSE_ARCHIVE_ROOT, FIREHOSE_DATA_OUTPUT_PREFIX
from connectors.s3_archive import S3Archive, StagingError, StagingInterrupted, StagingProgress, stage_archive
from tests.support.firehose import STREAM_NAME, evaluate_prefix

BUCKET = "raw-archive"
MIB = 1 << 20


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


@pytest.fixture
def s3(moto_url, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url)
    bucket = f"{BUCKET}-{os.urandom(4).hex()}"  # moto's server is shared by the session
    client.create_bucket(Bucket=bucket)
    client.gets = []  # the GetObject calls this client made, as botocore's events saw them
    client.meta.events.register("provide-client-params.s3.GetObject", lambda params, **_: client.gets.append(params["Key"]))
    return client, bucket


def put_firehose_objects(client, bucket: str, arrivals: list[str], size: int = 3 * MIB // 2) -> dict[str, bytes]:
    """Objects where the stack's Firehose puts them for these arrival times (each a different body, over a chunk)."""
    objects = {}
    for number, arrival in enumerate(arrivals):
        moment = at(arrival)
        key = (evaluate_prefix(FIREHOSE_DATA_OUTPUT_PREFIX, moment)
               + f"{STREAM_NAME}-1-{datetime.fromtimestamp(moment, tz=timezone.utc):%Y-%m-%d-%H-%M-%S}-{number:08d}.gz")
        objects[key] = os.urandom(size + number)
        client.put_object(Bucket=bucket, Key=key, Body=objects[key])
    return objects


def staged_files(root: Path) -> dict[str, bytes]:
    """What the batch job would read: the cache's files but hidden ones (Flink skips names starting with . or _)."""
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*")
            if path.is_file() and not any(part.startswith((".", "_")) for part in path.relative_to(root).parts)}


def as_staged(objects: dict[str, bytes]) -> dict[str, bytes]:
    """Objects' keys relative to the archive root, which the cache keeps."""
    return {key.removeprefix(f"{FIREHOSE_ARCHIVE_ROOT}/"): body for key, body in objects.items()}


def test_only_the_hours_of_the_range_are_staged_byte_for_byte(s3, tmp_path) -> None:
    client, bucket = s3
    inside = put_firehose_objects(client, bucket, ["2024-05-01 10:03:00", "2024-05-01 10:40:15", "2024-05-01 11:59:59"])
    put_firehose_objects(client, bucket, ["2024-04-30 23:55:00", "2024-05-01 09:58:00", "2024-05-01 12:00:00",
                                          "2024-05-02 10:30:00"])
    client.put_object(Bucket=bucket, Key="errors/processing-failed/date=2024-05-01/x.gz", Body=b"x")  # not the archive
    progress = StagingProgress()
    root = stage_archive(S3Archive.parse(f"s3://{bucket}/{FIREHOSE_ARCHIVE_ROOT}"), tmp_path / "cache",
                         "2024-05-01 10", "2024-05-01 11", progress, client=client)
    assert root == tmp_path / "cache" / bucket / FIREHOSE_ARCHIVE_ROOT
    assert staged_files(root) == as_staged(inside)
    assert sorted(client.gets) == sorted(inside)
    assert (progress.objects, progress.downloaded_objects, progress.cached_objects) == (3, 3, 0)
    assert progress.bytes == progress.downloaded_bytes == sum(len(body) for body in inside.values())
    assert progress.hours == ("2024-05-01 10", "2024-05-01 11")


def test_an_interrupted_staging_resumes_without_downloading_an_object_again(s3, tmp_path, monkeypatch) -> None:
    client, bucket = s3
    objects = put_firehose_objects(client, bucket, [f"2024-05-01 10:{minute:02d}:00" for minute in range(0, 60, 5)])
    archive, cache = S3Archive.parse(f"s3://{bucket}/{FIREHOSE_ARCHIVE_ROOT}/"), tmp_path / "cache"
    interrupted = threading.Event()
    # One download at a time, and Ctrl-C once the third object's response has arrived, before its body is read: the
    # first two are in the cache, the third is not (nor a part of it).
    workers = s3_archive.DOWNLOAD_WORKERS
    monkeypatch.setattr(s3_archive, "DOWNLOAD_WORKERS", 1)

    def ctrl_c_on_the_third(**_) -> None:
        if len(client.gets) == 3:
            interrupted.set()

    client.meta.events.register("after-call.s3.GetObject", ctrl_c_on_the_third)
    with pytest.raises(StagingInterrupted, match="2 of 12 objects are in the cache"):
        stage_archive(archive, cache, "2024-05-01 10", "2024-05-01 10", interrupted=interrupted, client=client)
    root = archive.local_root(cache)
    first_two = dict(list(as_staged(objects).items())[:2])
    assert staged_files(root) == first_two
    assert not list(root.rglob("*.tmp"))
    kept = {name: (root / name).stat() for name in first_two}

    client.gets.clear()
    client.meta.events.unregister("after-call.s3.GetObject", ctrl_c_on_the_third)
    monkeypatch.setattr(s3_archive, "DOWNLOAD_WORKERS", workers)
    progress = StagingProgress()
    stage_archive(archive, cache, "2024-05-01 10", "2024-05-01 10", progress, client=client)
    assert staged_files(root) == as_staged(objects)
    assert sorted(client.gets) == sorted(list(objects)[2:])  # the first two: not again
    for name, before in kept.items():  # the very files staged before, untouched
        after = (root / name).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert (progress.cached_objects, progress.downloaded_objects) == (2, 10)


def test_an_object_changed_damaged_or_deleted_since_is_staged_as_s3_holds_it_now(s3, tmp_path) -> None:
    client, bucket = s3
    objects = put_firehose_objects(client, bucket, ["2024-05-01 10:00:00", "2024-05-01 10:05:00",
                                                    "2024-05-01 10:10:00", "2024-05-01 10:15:00"])
    archive, cache = S3Archive.parse(f"s3://{bucket}/{FIREHOSE_ARCHIVE_ROOT}"), tmp_path / "cache"
    root = stage_archive(archive, cache, "2024-05-01 10", "2024-05-01 10", client=client)
    changed, damaged, deleted, _same = list(objects)
    objects[changed] = os.urandom(len(objects[changed]))  # same size, other bytes: only the ETag tells
    client.put_object(Bucket=bucket, Key=changed, Body=objects[changed])
    with open(root / as_staged({damaged: b""}).popitem()[0], "r+b") as cached:
        cached.truncate(1000)  # e.g. a disk that filled up
    client.delete_object(Bucket=bucket, Key=deleted)
    del objects[deleted]
    client.gets.clear()
    stage_archive(archive, cache, "2024-05-01 10", "2024-05-01 10", client=client)
    assert staged_files(root) == as_staged(objects)
    assert sorted(client.gets) == sorted([changed, damaged])


@pytest.mark.parametrize(("uri", "first_hour", "message"), [
    ("s3://{bucket}/raws", "2024-05-01 10", "no archive at s3://{bucket}/raws: it holds no date=YYYY-MM-DD/ partition "
                                            "(it holds nothing)"),
    ("s3://{bucket}", "2024-05-01 10", "no archive at s3://{bucket}: it holds no date=YYYY-MM-DD/ partition (it holds "
                                       "raw/)"),
    ("s3://{bucket}/raw", "2024-05-02 00", "no objects in s3://{bucket}/raw from hour 2024-05-02 00 to 2024-05-03 00 "
                                           "UTC (what --from/--to can need); its partitions run from date=2024-05-01 "
                                           "to date=2024-05-01"),
    ("s3://no-such-bucket-{bucket}/raw", "2024-05-01 10", "cannot read s3://no-such-bucket-{bucket}/raw: there is no "
                                                          "bucket no-such-bucket-{bucket}"),
])
def test_a_missing_archive_or_an_empty_range_says_so(s3, tmp_path, uri, first_hour, message) -> None:
    client, bucket = s3
    put_firehose_objects(client, bucket, ["2024-05-01 10:00:00"], size=10)
    with pytest.raises(StagingError) as raised:
        stage_archive(S3Archive.parse(uri.format(bucket=bucket)), tmp_path / "cache", first_hour,
                      first_hour.replace("05-02 00", "05-03 00"), client=client)
    assert str(raised.value).startswith(message.format(bucket=bucket))
    assert not (tmp_path / "cache").exists()
