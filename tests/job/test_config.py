"""Which Flink settings the job sets where: locally everything; on Managed Flink not what the service owns."""

from __future__ import annotations

import pytest

from job.flow.config import ConfigError, Deployment, JobConfig, duration_ms, load_property_groups
from job.flow.flink_settings import flink_configuration


def settings(tmp_path, **kwargs) -> dict[str, str]:
    config = JobConfig.from_properties(load_property_groups(), tmp_path)
    return dict(flink_configuration(config, **kwargs).to_dict())


def test_local_run_binds_loopback_and_checkpoints_under_the_data_dir(tmp_path) -> None:
    local = settings(tmp_path, rest_port=8099)
    assert (local["rest.port"], local["rest.bind-address"]) == ("8099", "127.0.0.1")
    assert local["execution.checkpointing.dir"] == (tmp_path / "checkpoints").resolve().as_uri()
    assert local["table.exec.state.ttl"] == "3 h" and local["table.local-time-zone"] == "UTC"


def test_on_a_cluster_the_cluster_owns_rest_and_python(tmp_path) -> None:
    remote = settings(tmp_path, deployment=Deployment.CLUSTER)
    assert "rest.port" not in remote and "python.executable" not in remote
    assert "execution.checkpointing.interval" in remote  # a self-managed cluster takes the job's checkpointing


def test_on_managed_flink_the_service_owns_checkpoints_and_restarts(tmp_path) -> None:
    managed = settings(tmp_path, deployment=Deployment.MANAGED)
    assert not [key for key in managed if key.startswith(("execution.checkpointing", "restart-strategy"))]
    assert managed["table.exec.state.ttl"] == "3 h"


@pytest.mark.parametrize("text, expected", [("10 s", 10_000), ("500 ms", 500), ("2 min", 120_000), ("3 h", 10_800_000),
                                            ("250", 250), ("1.5 s", 1500)])
def test_flink_durations_in_milliseconds(text, expected) -> None:
    assert duration_ms(text) == expected


def test_a_bad_duration_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="Job checkpoint.interval must be a duration like '10 s'"):
        duration_ms("ten seconds", "Job checkpoint.interval")


@pytest.mark.parametrize("value", ["0", "-2", "four", "1.5"])
def test_a_write_concurrency_below_one_or_not_whole_names_the_setting(tmp_path, value) -> None:
    groups = load_property_groups()
    groups["FeatureStore"]["write.concurrency"] = value
    with pytest.raises(ConfigError, match=f"FeatureStore write.concurrency must be a whole number of at least 1, got '{value}'"):
        JobConfig.from_properties(groups, tmp_path)
    groups["FeatureStore"]["write.concurrency"] = "2"
    assert JobConfig.from_properties(groups, tmp_path).featurestore_write_concurrency == 2
