"""The feature-store client against the real local server, with faults injected by the server."""

from __future__ import annotations

import json
import urllib.request

import pytest

from connectors.featurestore.client import (
    FeatureStoreClient,
    FeatureStoreConfig,
    FeatureStoreError,
    SchemaChangeRefused,
)
from connectors.featurestore.model import FeatureGroupDefinition, FeatureType
from tests.support import free_port
from tests.support.feature_rows import DEFINITION, GROUP, feature_rows
from tests.support.store_records import offline_rows


class RecordingSleep:
    """Records the backoff delays the client asks for (and sleeps them, so deadlines stay real)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        import time

        self.delays.append(seconds)
        time.sleep(seconds)


def arm_faults(url: str, **fault) -> dict:
    request = urllib.request.Request(
        f"{url}/_chainfeat/faults", data=json.dumps(fault).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def fault_state(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/_chainfeat/faults") as response:
        return json.load(response)


@pytest.fixture
def client(server) -> FeatureStoreClient:
    client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url, batch_size=20, max_delay_s=0.05))
    assert client.ensure_feature_group(DEFINITION) is True
    return client


def assert_online_exactly(client: FeatureStoreClient, rows: list[dict]) -> None:
    stored = client.get_records(GROUP, [row["tx_minute"] for row in rows])
    assert sorted(stored, key=lambda r: r["tx_minute"]) == rows
    assert client.list_record_identifiers(GROUP) == sorted(row["tx_minute"] for row in rows)


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "error", "status": 503, "code": "ServiceUnavailable"},
        {"kind": "error", "status": 500, "code": "InternalFailure"},
        {"kind": "error", "status": 400, "code": "ThrottlingException"},
        {"kind": "drop"},
        {"kind": "unprocessed"},
    ],
    ids=["503", "500", "throttling", "connection-dropped", "unprocessed-entries"],
)
def test_retries_write_everything_exactly_once(client, server, data_dir, fault) -> None:
    rows = feature_rows(250)
    arm_faults(server.url, count=4, **fault)
    assert client.put_records(GROUP, rows) == 250
    assert fault_state(server.url)["injected"] == 4
    assert client.retries >= 4
    assert_online_exactly(client, rows)
    server.store.flush_offline()
    offline = sorted(row["tx_minute"] for row in offline_rows(data_dir, GROUP))
    assert offline == sorted(row["tx_minute"] for row in rows)  # no batch was written twice


def test_rows_written_again_as_they_are_reach_the_offline_store_once(client, server, data_dir) -> None:
    """A window re-emitted after a restore: the same row again is skipped; a changed or new one is written."""
    rows = feature_rows(30)
    assert client.put_new_records(GROUP, rows) == 30
    changed = {**rows[3], "total_nb_trx_1min": 99, "event_time": rows[3]["event_time"] + 1}
    new = feature_rows(31)[30]
    assert client.put_new_records(GROUP, [*rows, changed, new]) == 2
    server.store.flush_offline()
    offline = sorted((row["tx_minute"], row["total_nb_trx_1min"]) for row in offline_rows(data_dir, GROUP))
    expected = sorted([(row["tx_minute"], row["total_nb_trx_1min"]) for row in [*rows, new]]
                      + [(changed["tx_minute"], 99)])
    assert offline == expected


def test_single_put_retries_too(client, server) -> None:
    arm_faults(server.url, count=2, kind="error", status=503, code="ServiceUnavailable")
    (row,) = feature_rows(1)
    client.put_record(GROUP, row)
    assert client.get_record(GROUP, row["tx_minute"]) == row
    assert client.retries == 2


def test_validation_error_is_not_retried(client, server) -> None:
    bad = {**feature_rows(1)[0], "total_nb_trx_1min": "lots"}
    with pytest.raises(FeatureStoreError, match="total_nb_trx_1min") as raised:
        client.put_record(GROUP, bad)
    assert "rejected" in str(raised.value)
    assert client.retries == 0


def test_batch_with_a_bad_row_writes_the_good_ones_and_names_the_bad(client) -> None:
    rows = feature_rows(3)
    rows[1] = {**rows[1], "avg_fee_1min": "n/a"}
    with pytest.raises(FeatureStoreError, match=r"1 of 3 records were rejected.*tx_minute=2024-05-01 00:01:00.*avg_fee_1min"):
        client.put_records(GROUP, rows)
    assert client.retries == 0
    assert [r["tx_minute"] for r in client.get_records(GROUP, [r["tx_minute"] for r in rows])] == [
        rows[0]["tx_minute"],
        rows[2]["tx_minute"],
    ]


def test_total_wait_is_bounded_and_the_error_says_what_failed(server) -> None:
    sleep = RecordingSleep()
    client = FeatureStoreClient(
        FeatureStoreConfig(endpoint_url=server.url, max_attempts=1000, base_delay_s=0.05, max_delay_s=0.2,
                           total_timeout_s=1.0),
        sleep=sleep,
    )
    client.ensure_feature_group(DEFINITION)
    arm_faults(server.url, count=10_000, kind="error", status=503, code="ServiceUnavailable")
    with pytest.raises(FeatureStoreError) as raised:
        client.put_records(GROUP, feature_rows(5))
    message = str(raised.value)
    assert "BatchWriteRecord of 5 records to tx_minute_features failed after" in message
    assert server.url in message and "ServiceUnavailable" in message
    assert sum(sleep.delays) <= 1.0
    assert all(delay <= 0.2 for delay in sleep.delays)
    assert len(sleep.delays) >= 3  # it did back off and retry before giving up


def test_unreachable_endpoint_fails_clearly() -> None:
    port = free_port()  # nothing listens there once the probe closed
    client = FeatureStoreClient(
        FeatureStoreConfig(endpoint_url=f"http://127.0.0.1:{port}", max_attempts=3, base_delay_s=0.01),
    )
    with pytest.raises(FeatureStoreError, match=r"failed after 3 attempts.*chainfeat featurestore serve"):
        client.put_record(GROUP, feature_rows(1)[0])


def test_ensure_feature_group_is_idempotent_and_adds_features(client, server) -> None:
    """A definition that gains a feature evolves the group (UpdateFeatureGroup, then a wait until it is
    applied) and keeps what it held; the new feature can be written right after."""
    assert client.ensure_feature_group(DEFINITION) is False
    rows = feature_rows(3)
    client.put_records(GROUP, rows)
    other = FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url))
    grown = FeatureGroupDefinition(GROUP, "tx_minute", "event_time", {**DEFINITION.features, "extra": FeatureType.STRING})
    assert other.ensure_feature_group(grown) is False
    described = other.control.describe_feature_group(FeatureGroupName=GROUP)
    assert described["LastUpdateStatus"] == {"Status": "Successful"}
    assert described["FeatureDefinitions"][-1] == {"FeatureName": "extra", "FeatureType": "String"}
    assert other.get_records(GROUP, [row["tx_minute"] for row in rows]) == rows  # nothing lost
    new_row = {**feature_rows(4)[3], "extra": "x"}
    other.put_records(GROUP, [new_row])
    assert other.get_record(GROUP, new_row["tx_minute"]) == new_row
    assert other.ensure_feature_group(grown) is False  # and nothing to do a second time


@pytest.mark.parametrize(
    ("features", "named"),
    [
        ({**DEFINITION.features, "total_fee_1min": FeatureType.FRACTIONAL}, "changes total_fee_1min from Integral to Fractional"),
        ({name: kind for name, kind in DEFINITION.features.items() if name != "avg_fee_1min"}, "removes avg_fee_1min"),
    ],
    ids=["retyped", "removed"],
)
def test_a_retyped_or_removed_feature_is_refused_with_what_to_do(client, server, features, named) -> None:
    other = FeatureStoreClient(FeatureStoreConfig(endpoint_url=server.url))
    with pytest.raises(SchemaChangeRefused) as raised:
        other.ensure_feature_group(FeatureGroupDefinition(GROUP, "tx_minute", "event_time", features))
    message = str(raised.value)
    assert named in message and "can only add features" in message and "rename the feature file" in message
    assert other.describe(GROUP, fresh=True) == DEFINITION  # the group is as it was


def test_newest_record_is_the_newest_event_time_whatever_the_key(client, server) -> None:
    rows = feature_rows(500)  # historic data, written newest first
    client.put_records(GROUP, list(reversed(rows)))
    assert client.newest_record(GROUP) == rows[-1]
    # A group keyed by entity: the newest event time is not the greatest identifier.
    by_relay = FeatureGroupDefinition("relay_features", "relayed_by", "event_time",
                                      {"relayed_by": FeatureType.STRING, "event_time": FeatureType.FRACTIONAL})
    client.ensure_feature_group(by_relay)
    client.put_records("relay_features", [{"relayed_by": "z", "event_time": 100.0}, {"relayed_by": "a", "event_time": 200.0}])
    assert client.newest_record("relay_features") == {"relayed_by": "a", "event_time": 200.0}
    assert server.store.newest_record_id("relay_features") == "a"


def test_newest_record_of_an_empty_group(client) -> None:
    assert client.newest_record(GROUP) is None


def test_requests_are_signed_unless_the_store_is_on_this_machine(server) -> None:
    """The local store (a loopback address) checks no signature: the client does not sign for it. Any other endpoint,
    or sign_requests=True, gets SigV4-signed requests, as AWS requires."""
    def authorizations(config: FeatureStoreConfig) -> list[str | None]:
        client = FeatureStoreClient(config)
        seen: list[str | None] = []
        for api in (client.runtime, client.control):
            api.meta.events.register("before-send", lambda request, **_: seen.append(request.headers.get("Authorization")))
        client.ensure_feature_group(DEFINITION)
        assert client.put_records(GROUP, feature_rows(30)) == 30
        assert len(client.get_records(GROUP, [row["tx_minute"] for row in feature_rows(30)])) == 30
        return seen

    unsigned = authorizations(FeatureStoreConfig(endpoint_url=server.url))
    assert unsigned and all(header is None for header in unsigned)
    signed = authorizations(FeatureStoreConfig(endpoint_url=server.url, sign_requests=True))
    assert signed and all(header and header.startswith(b"AWS4-HMAC-SHA256") for header in signed)
    assert FeatureStoreConfig(endpoint_url="http://localhost:8766").signs_requests is False
    assert FeatureStoreConfig(endpoint_url="http://[::1]:8766").signs_requests is False
    assert FeatureStoreConfig().signs_requests is True  # Amazon SageMaker
    assert FeatureStoreConfig(endpoint_url="https://featurestore-runtime.sagemaker.eu-west-1.amazonaws.com").signs_requests
