"""The job's entry point on a Flink cluster: Amazon Managed Service for Apache Flink or self-managed.

The application zip's main.py calls main(). It reads the one properties file (on Managed Flink
/etc/flink/application_properties.json, else the zip's job/flow/application_properties.json, or the file in
CHAINFEAT_PROPERTIES), builds the same pipeline `chainfeat run` builds, makes sure the feature group
exists with the job's features (adding new ones; a removed or retyped one stops it here), ships the job's
Python packages to the Python UDF workers, and submits the job. Properties whose Backfill group names an
archive (archive.uri) run that backfill instead of the stream: the batch job of `chainfeat backfill`
(job/flow/backfill.py), as `chainfeat backfill --flink-url` submits it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig, SchemaChangeRefused
from job.flow.backfill import BACKFILL_JOB_NAME, BackfillSettings, build_backfill
from job.flow.config import MANAGED_FLINK_PROPERTIES, Deployment, JobConfig, load_property_groups, with_defaults
from job.flow.feature_groups import ensure_feature_groups
from job.flow.pipeline import Pipeline, build_pipeline
from job.paths import CODE_PACKAGES, CODE_ROOT, WORKER_CODE

log = logging.getLogger(__name__)


def worker_python_files(root: Path = CODE_ROOT) -> list[str]:
    """Folders for python.files. Flink puts each folder itself on the workers' PYTHONPATH, so the code goes
    into one folder that holds the packages (job/, connectors/, udfs/), beside site-packages/: in the zip its
    worker-code/, from a checkout a temporary copy."""
    if (root / WORKER_CODE).is_dir():
        code = root / WORKER_CODE
    else:
        code = Path(tempfile.mkdtemp(prefix="chainfeat-code-"))
        for name in CODE_PACKAGES:
            shutil.copytree(root / name, code / name, ignore=shutil.ignore_patterns("__pycache__"))
    files = [str(code)]
    if (root / "site-packages").is_dir():
        files.append(str(root / "site-packages"))
    return files


def ship_worker_code(pipeline: Pipeline) -> None:
    """Give the Python UDF workers the job's packages and dependencies, unless the run options already did
    (`flink run -pyfs`). On Managed Flink the zip's run options do (pyFiles: site-packages/ and worker-code/,
    job/deploy/package.py): its code may not set python.files (job/flow/managed_keys.py)."""
    if pipeline.deployment is Deployment.MANAGED:
        return
    already = pipeline.table_env.get_config().get("python.files", "") or ""
    for path in worker_python_files():
        if Path(path).name not in already:
            pipeline.table_env.add_python_file(path)


def main(wait: bool | None = None) -> str:
    """Build and submit the job; returns the job id. Waits for the job's end unless on Managed Flink
    (there the service runs the job; elsewhere a local MiniCluster would die with this process)."""
    logging.basicConfig(level=logging.INFO)
    properties = os.environ.get("CHAINFEAT_PROPERTIES")
    groups = load_property_groups(Path(properties) if properties else None)
    data_dir = Path(os.environ.get("CHAINFEAT_DATA_DIR") or with_defaults(groups)["Job"]["data.dir"] or os.getcwd())
    config = JobConfig.from_properties(groups, data_dir)
    if MANAGED_FLINK_PROPERTIES.exists():
        deployment = Deployment.MANAGED
    elif os.environ.get("CHAINFEAT_DETACHED") == "1":
        deployment = Deployment.CLUSTER
    else:
        deployment = Deployment.LOCAL
    if wait is None:
        wait = deployment is Deployment.LOCAL  # on Managed Flink or after `flink run -d` the cluster runs the job
    backfill = BackfillSettings.from_properties(groups, data_dir)
    if backfill is not None:
        pipeline, job_name = build_backfill(config, backfill, deployment=deployment).pipeline, BACKFILL_JOB_NAME
    else:
        pipeline, job_name = build_pipeline(config, deployment=deployment), "chainfeat"
    ship_worker_code(pipeline)
    client = FeatureStoreClient(FeatureStoreConfig(endpoint_url=config.featurestore_endpoint_url,
                                                   region=config.featurestore_region))
    try:  # the groups may be managed by infrastructure code (the CDK app): an unreachable store is only logged
        ensure_feature_groups(client, pipeline.feature_groups, managed_elsewhere=True)
    except SchemaChangeRefused as error:  # a removed or retyped column: stop before the job starts
        log.error("%s", error)
        raise SystemExit(f"error: {error}") from None
    job = pipeline.execute_async(job_name)
    job_id = str(job.get_job_id())
    log.info("submitted %s job %s (code from %s)", job_name, job_id, CODE_ROOT)
    if wait:
        job.get_job_execution_result().result()
    return job_id
