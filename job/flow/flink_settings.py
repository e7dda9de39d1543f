"""The job's Flink settings for where it runs (config.Deployment): one function, so a local run, a cluster and
Managed Flink differ only in the keys each owner leaves to the job. On Managed Flink every key the job sets is
checked against the service's list first (managed_keys.py)."""

from __future__ import annotations

import sys

from pyflink.common import Configuration

from job.flow.config import Deployment, JobConfig
from job.flow.managed_keys import refuse_unlisted


def flink_configuration(config: JobConfig, rest_port: int | None = None,
                        deployment: Deployment = Deployment.LOCAL, batch: bool = False) -> Configuration:
    """The job's Flink settings for where it runs (see Deployment): locally all of them; a cluster owns its
    REST endpoint and Python interpreter; on Managed Flink the job sets only keys the service lets application
    code set (job/flow/managed_keys.py) and the service sets the rest from the application's configuration."""
    return configuration(flink_settings(config, rest_port, deployment, batch))


def configuration(settings: dict[str, str]) -> Configuration:
    """PyFlink's Configuration holding ``settings``."""
    flink = Configuration()
    for key, value in settings.items():
        flink.set_string(key, value)
    return flink


def flink_settings(config: JobConfig, rest_port: int | None = None,
                   deployment: Deployment = Deployment.LOCAL, batch: bool = False) -> dict[str, str]:
    """``flink_configuration``'s keys and values; on Managed Flink every key is one its list allows.
    ``batch``: the job reads a bounded input in Flink's batch mode (a backfill): no checkpoints, no state TTL."""
    settings = {
        "table.local-time-zone": "UTC",
        "table.exec.state.ttl": config.dedup_ttl,
        "table.exec.source.idle-timeout": config.idle_timeout,
        # Without object reuse Flink copies each row for every branch of the plan (dead letter, late, on time,
        # progress); with digest reuse every feature group and output shares one parse and one dedup.
        "pipeline.object-reuse": "true",
        "table.optimizer.reuse-optimize-block-with-digest-enabled": "true",
    }
    # Managed Flink's application configuration sets these (the CDK app, chainfeat submit: ParallelismConfiguration,
    # CheckpointConfiguration with the Job checkpoint.interval); restarts and retained checkpoints are the
    # service's own (exponential-delay restarts, one retained checkpoint).
    service_owned = {
        # Several reading subtasks (a feed of several files) judge lateness by different watermarks (docs/deploying.md
        # "Parallelism"); Managed Flink's N > 1 reads its one shard with one subtask, which is exact.
        "parallelism.default": "1",
        "execution.checkpointing.interval": config.checkpoint_interval,
        "execution.checkpointing.dir": config.checkpoint_uri,
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "3",
        # A failing job restarts from its last checkpoint a few times, then fails visibly.
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "3",
        "restart-strategy.fixed-delay.delay": "5 s",
    }
    if batch:
        # A batch job is restarted region by region from its inputs, not from checkpoints.
        settings["execution.runtime-mode"] = "batch"
        del settings["table.exec.state.ttl"], settings["table.exec.source.idle-timeout"]
        service_owned = {key: value for key, value in service_owned.items()
                         if not key.startswith("execution.checkpointing.")}
    if deployment is not Deployment.MANAGED:
        settings.update(service_owned)
    settings.update(config.extra_flink_config)
    if deployment is Deployment.LOCAL:
        # In-process MiniCluster: the workers use this interpreter (unless the local runtime gives its faster boot,
        # job/local/minicluster.py), and its dashboard/REST API binds loopback only; port 0 picks a free one.
        settings.setdefault("python.executable", sys.executable)
        settings.setdefault("python.client.executable", sys.executable)
        settings.update({"rest.port": str(rest_port or 0), "rest.bind-address": "127.0.0.1", "rest.address": "127.0.0.1"})
    if config.restore_from:
        settings["execution.savepoint.path"] = config.restore_from
    if deployment is Deployment.MANAGED:
        refuse_unlisted(settings)
    return settings
