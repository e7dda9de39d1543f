"""Shared fixtures: a real local feature-store server on a free port, and boto3 clients for it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from connectors.featurestore.local.server import LocalFeatureStoreServer
from job.local.data_dir import DataDir
from job.local.jvm import configure_local_jvm

REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout under test
# Flink writes its logs next to pyflink unless told otherwise; keep them out of the venv.
os.environ.setdefault("FLINK_LOG_DIR", str(REPO_ROOT / ".pytest_cache" / "flink-logs"))
configure_local_jvm()  # the test session's own JVM (tests/support/sql_step.py) starts as a local run's does
CHAINFEAT = [sys.executable, "-m", "job.cli"]


def boto3_kwargs(url: str) -> dict[str, str]:
    return {
        "endpoint_url": url,
        "region_name": "us-east-1",
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
    }


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def server(data_dir: Path) -> Iterator[LocalFeatureStoreServer]:
    with LocalFeatureStoreServer(DataDir(data_dir).featurestore, port=0, flush_interval_s=0.2).start() as running:
        yield running


@pytest.fixture
def runtime(server: LocalFeatureStoreServer):
    return boto3.client("sagemaker-featurestore-runtime", **boto3_kwargs(server.url))


@pytest.fixture
def control(server: LocalFeatureStoreServer):
    return boto3.client("sagemaker", **boto3_kwargs(server.url))


@pytest.fixture
def cli_env(data_dir: Path) -> dict[str, str]:
    """Environment for running the real CLI in a subprocess against ``data_dir``."""
    from tests.support import cli_environment

    return cli_environment(data_dir)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's AWS server (Kinesis, S3, ...) on a free loopback port."""
    from moto.server import ThreadedMotoServer

    from tests.support import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
