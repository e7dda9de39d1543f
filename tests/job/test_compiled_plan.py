"""The streaming job's compiled plan (job/flow/plan_cache.py): one plan for every data dir, planned again when
what it is made of changes, never cached when it holds a run's location, planned again when it does not load.
The runs that execute a cached plan are in tests/job/test_run.py (a kill, then a resume from the cached plan)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from pyflink.table import CompiledPlan

from job.flow.config import JobConfig, load_property_groups
from job.flow.pipeline import Pipeline, build_pipeline
from job.flow.plan_cache import GROUPS_BESIDE_PLAN, PlanCache
from job.flow.sql_files import FEATURES_DIR
from tests.support import GROUP

pytestmark = pytest.mark.slow


def pipeline_for(data_dir: Path, features: Path = FEATURES_DIR, plan_cache: PlanCache | None = None,
                 **flink: str) -> Pipeline:
    config = JobConfig.from_properties(load_property_groups(), data_dir, featurestore_endpoint_url="http://127.0.0.1:9",
                                       monitor_interval_s=None)
    return build_pipeline(replace(config, features_dir=features, extra_flink_config=flink), plan_cache=plan_cache)


def numbered(plan: CompiledPlan) -> dict:
    """A compiled plan with its nodes numbered from 1 (the planner numbers them across the whole process)."""
    text = json.loads(plan.as_json_string())
    ids = {node["id"]: number for number, node in enumerate(text["nodes"], 1)}
    for node in text["nodes"]:
        node["id"] = ids[node["id"]]
    for edge in text["edges"]:
        edge["source"], edge["target"] = ids[edge["source"]], ids[edge["target"]]
    return text


def test_one_plan_serves_every_data_dir_and_a_changed_feature_file_is_planned_again(tmp_path) -> None:
    first, second = pipeline_for(tmp_path / "a"), pipeline_for(tmp_path / "b")
    assert first.locations != second.locations and str(tmp_path / "a") in " ".join(first.locations)
    assert first.plan_key == second.plan_key
    # Checkpointing is read when the plan runs, not by the planner; the dedup TTL is planned in.
    assert pipeline_for(tmp_path / "c", **{"execution.checkpointing.interval": "7 s"}).plan_key == first.plan_key
    assert pipeline_for(tmp_path / "d", **{"table.exec.state.ttl": "7 h"}).plan_key != first.plan_key

    features = tmp_path / "features"
    features.mkdir()
    edited = (FEATURES_DIR / f"{GROUP}.sql").read_text().replace("INTERVAL '1' MINUTE", "INTERVAL '2' MINUTE")
    assert edited != (FEATURES_DIR / f"{GROUP}.sql").read_text()
    (features / f"{GROUP}.sql").write_text(edited)
    assert pipeline_for(tmp_path / "e", features).plan_key != first.plan_key


def test_a_plan_that_holds_a_location_is_not_cached(tmp_path) -> None:
    features = tmp_path / "features"
    features.mkdir()
    shutil.copy(FEATURES_DIR / f"{GROUP}.sql", features)
    # A feature file that selects where the job reads from: the plan holds the path as a literal.
    (features / "feed_named.sql").write_text(
        "CREATE TEMPORARY VIEW feed_named AS\n"
        "SELECT '${feed_uri}' AS feed, CAST(UNIX_TIMESTAMP(DATE_FORMAT(window_end, 'yyyy-MM-dd HH:mm:ss')) AS DOUBLE)"
        " AS event_time, COUNT(*) AS nb_trx\n"
        "FROM TABLE(TUMBLE(TABLE unique_transactions, DESCRIPTOR(ts), INTERVAL '1' MINUTE))\n"
        "GROUP BY window_start, window_end;\n")
    pipeline = pipeline_for(tmp_path / "data", features)
    cache = PlanCache(tmp_path / "plans")
    assert not cache.store(pipeline.plan_key, pipeline.statement_set.compile_plan(), pipeline.locations)
    assert not list(cache.directory.glob("*"))

    plain = pipeline_for(tmp_path / "plain")
    assert cache.store(plain.plan_key, plain.statement_set.compile_plan(), plain.locations)
    assert cache.load(pipeline_for(tmp_path / "other").table_env, plain.plan_key) is not None


def test_a_cached_plan_that_does_not_load_is_not_used(tmp_path) -> None:
    pipeline = pipeline_for(tmp_path / "data")
    cache = PlanCache(tmp_path / "plans")
    cache.directory.mkdir()
    cache.path(pipeline.plan_key).write_text('{"flinkVersion": "2.3", "nodes": [{"id": 1, "type": "no-such-node_1"}]}')
    assert cache.load(pipeline.table_env, pipeline.plan_key) is None


def test_a_run_whose_plan_is_cached_creates_only_what_the_plan_names(tmp_path) -> None:
    cache = PlanCache(tmp_path / "plans")
    planned = pipeline_for(tmp_path / "a", FEATURES_DIR / "examples", cache)
    assert "unique_transactions" in planned.table_env.list_temporary_views()
    plan = planned.statement_set.compile_plan()
    assert cache.store(planned.plan_key, plan, planned.locations, planned.feature_groups)

    cached = pipeline_for(tmp_path / "b", FEATURES_DIR / "examples", cache)
    # The statements keyed before anything ran are the ones the planned build ran (else no plan is ever found).
    assert cached.plan_key == planned.plan_key
    assert [(g, list(g.features)) for g in cached.feature_groups] == [(g, list(g.features)) for g in planned.feature_groups]
    assert cached.table_env.list_temporary_views() == []  # no view planned again
    assert cache.load(cached.table_env, cached.plan_key) is not None  # its tables and functions are all there
    # Had the plan not loaded, the views and inserts follow then, into the same plan.
    assert numbered(cached.statement_set.compile_plan()) == numbered(plan)

    cache.beside_path(GROUPS_BESIDE_PLAN, planned.plan_key).unlink()  # a plan without its groups: planned again
    assert "unique_transactions" in pipeline_for(tmp_path / "c", FEATURES_DIR / "examples", cache).table_env.list_temporary_views()
