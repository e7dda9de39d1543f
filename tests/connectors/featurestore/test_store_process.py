"""The local store in a process of its own (what `chainfeat run` writes to): it answers like the in-process server,
stops with every record on disk, never outlives a parent killed with -9, and says why it cannot start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import boto3
import pytest

from connectors.featurestore.local.process import StoreProcess
from connectors.featurestore.local.server import FeatureStoreLocked, LocalFeatureStoreServer
from job.local.data_dir import DataDir
from tests.conftest import boto3_kwargs
from tests.support.store_records import DEFINITIONS, GROUP, offline_rows, record


def create(url: str) -> None:
    boto3.client("sagemaker", **boto3_kwargs(url)).create_feature_group(
        FeatureGroupName=GROUP, RecordIdentifierFeatureName="tx_minute", EventTimeFeatureName="event_time",
        FeatureDefinitions=DEFINITIONS, OnlineStoreConfig={"EnableOnlineStore": True},
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://bucket/prefix"}},
        RoleArn="arn:aws:iam::123456789012:role/r")


def test_it_serves_answers_a_run_and_stops_with_every_record_on_disk(data_dir) -> None:
    root = DataDir(data_dir).featurestore
    store = StoreProcess(root)
    try:
        create(store.url)
        runtime = boto3.client("sagemaker-featurestore-runtime", **boto3_kwargs(store.url))
        runtime.batch_write_record(Entries=[{"FeatureGroupName": GROUP, "Record": record(name, time_)}
                                            for name, time_ in (("a", "1"), ("b", "3"), ("c", "2"))])
        assert (store.online_count(GROUP), store.newest_record_id(GROUP)) == (3, "b")
        assert store.pid != os.getpid() and _alive(store.pid)  # served by a process of its own
    finally:
        store.stop()
    store.stop()  # idempotent
    assert not _alive(store.pid)
    assert sorted(row["tx_minute"] for row in offline_rows(data_dir)) == ["a", "b", "c"]
    LocalFeatureStoreServer(root, port=0).start().stop()  # the store is free again


def test_it_ends_when_its_parent_is_killed(data_dir) -> None:
    root = DataDir(data_dir).featurestore
    parent = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
         "from connectors.featurestore.local.process import StoreProcess\n"
         "store = StoreProcess(Path(sys.argv[1]))\nprint(store.pid, flush=True)\ntime.sleep(300)", str(root)],
        stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 20
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the store outlived its parent"
    finally:
        parent.kill()
    LocalFeatureStoreServer(root, port=0).start().stop()  # it let go of the store


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) is gone for this purpose
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_store_served_elsewhere_is_one_clear_error(server, data_dir) -> None:
    with pytest.raises(FeatureStoreLocked, match="served by another process"):
        StoreProcess(DataDir(data_dir).featurestore)
