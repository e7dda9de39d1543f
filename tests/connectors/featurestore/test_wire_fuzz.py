"""The local feature store under a wire-level fuzz: thousands of malformed requests over raw sockets, each answered
with its 4xx in AWS's error shape as botocore reads it, one log line each and no traceback; after every kind the
server still answers boto3, and nothing of the malformed requests reaches the disk.

What each kind must get is AWS's protocol behaviour (connectors/featurestore/local/wire.py cites its sources).
"""

from __future__ import annotations

import logging
import random
import socket
from collections import Counter
from pathlib import Path

import boto3
import pytest

from connectors.featurestore.local.server import LocalFeatureStoreServer
from job.local.data_dir import DataDir
from tests.conftest import boto3_kwargs
from tests.connectors.featurestore.test_local_server import create_group
from tests.support.store_records import GROUP, offline_rows, record
from tests.support.wire_fuzz import KINDS, RARE, exchange

REQUESTS = 2500
SEED = 33


def files(root: Path) -> set[str]:
    # SQLite's own journal files come and go with its checkpoints: they are not the store's contents.
    return {str(path.relative_to(root)) for path in root.rglob("*")
            if path.is_file() and not path.name.endswith(("-wal", "-shm", "-journal"))}


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


@pytest.fixture
def fuzzed_server(data_dir: Path):
    # A short body timeout: a body cut short is answered in 0.2 s instead of the default's seconds.
    with LocalFeatureStoreServer(DataDir(data_dir).featurestore, port=0, flush_interval_s=0.2,
                                 body_timeout_s=0.2).start() as running:
        yield running


def test_every_malformed_request_gets_its_aws_error_and_the_server_keeps_serving(fuzzed_server, data_dir,
                                                                                  caplog) -> None:
    caplog.set_level(logging.INFO, logger="connectors.featurestore.local.server")
    control = boto3.client("sagemaker", **boto3_kwargs(fuzzed_server.url))
    runtime = boto3.client("sagemaker-featurestore-runtime", **boto3_kwargs(fuzzed_server.url))
    create_group(control)
    runtime.put_record(FeatureGroupName=GROUP, Record=record("2024-01-01 00:00:00", "60", "3", "1.5"))
    fuzzed_server.flush_offline()
    root = DataDir(data_dir).featurestore
    before = files(root)
    caplog.clear()

    rng = random.Random(SEED)
    chosen: list[str] = []
    while len(chosen) < REQUESTS:
        chosen += [kind for kind in KINDS if chosen.count(kind) < RARE.get(kind, REQUESTS)]
    chosen = chosen[:REQUESTS]
    wrong: list[str] = []
    sock = connect(fuzzed_server.url)
    for kind in sorted(set(chosen), key=chosen.index):
        for _ in range(chosen.count(kind)):
            malformed = KINDS[kind](rng, GROUP)
            answer = exchange(sock, malformed)
            if (answer.status, answer.code, answer.shaped) != (malformed.status, malformed.code, True):
                wrong.append(f"{kind}: {answer} instead of {malformed.status} {malformed.code}")
            if answer.closes:
                sock.close()
                sock = connect(fuzzed_server.url)
        # After each kind the server still serves the SDK (a new connection, and the fuzzer's own kept-alive one).
        got = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="2024-01-01 00:00:00")
        assert got["Record"][2] == {"FeatureName": "count", "ValueAsString": "3"}, kind
    sock.close()

    assert wrong == []
    kinds = Counter(chosen)
    assert len(chosen) == REQUESTS and len(kinds) == len(KINDS) >= 15
    # One line per malformed request naming its error code, none with a traceback.
    lines = [r for r in caplog.records if r.name == "connectors.featurestore.local.server"]
    assert [r for r in lines if r.exc_info] == []
    answered = [r.getMessage() for r in lines if " -> " in r.getMessage()]
    assert len(answered) == REQUESTS
    # ...named by the operation it was for, once the request says which (the body's problems come after routing).
    assert {"PutRecord", "CreateFeatureGroup", "BatchGetRecord"} <= {line.split(" -> ")[0] for line in answered}
    assert [line for line in answered if line.startswith(f"PUT /FeatureGroup/{GROUP} ")] == []
    # Nothing of it on disk: the same files, the one group, its one record online and offline.
    fuzzed_server.flush_offline()
    assert files(root) == before
    assert [g["FeatureGroupName"] for g in control.list_feature_groups()["FeatureGroupSummaries"]] == [GROUP]
    assert runtime.list_records(FeatureGroupName=GROUP)["RecordIdentifiers"] == ["2024-01-01 00:00:00"]
    assert [row["tx_minute"] for row in offline_rows(data_dir)] == ["2024-01-01 00:00:00"]


def test_a_body_over_the_limit_is_refused_before_it_is_sent(fuzzed_server) -> None:
    """The 413 arrives while the client has sent 64 KB of its announced 50 MB: the server did not wait for the rest."""
    malformed = KINDS["body over the request limit"](random.Random(SEED), GROUP)
    sock = connect(fuzzed_server.url)
    answer = exchange(sock, malformed)
    sock.close()
    assert (answer.status, answer.code, answer.closes) == (413, "RequestEntityTooLargeException", True)
