"""The streaming job runs from a compiled plan: Flink's JSON form of the optimised job, kept between runs.

Why: on a cold JVM, optimising the job's statement set is ~2 s of Calcite, a tenth of a 1 M-transaction run;
loading its compiled plan takes ~0.2 s. And only a job executed from a compiled plan gets its operators' UIDs
from the plan (Flink's table.exec.uid.generation PLAN_ONLY), so every streaming job executes through one,
planned or loaded: a savepoint a run took restores into the next run either way.

A compiled plan names the job's temporary tables and functions by identifier, not by their options or code:
each run's paths, endpoints and feature-store writer are its own catalog's. So one plan serves every data dir,
and the key of a plan is what it is made of: the statements with the run's locations left out
(sql_files.LOCATION_PARAMETERS), the planner's settings, the Flink version and the code that adds the Table API
inserts. A plan that holds a location after all is not kept; a plan that no longer loads is planned again.

Beside each plan the cache keeps the feature groups its job writes (derived from the feature views' schemas when it
was planned). A run whose plan is cached needs neither the views nor the job's inserts: it creates the tables and
functions the plan names and takes the groups from the cache (job/flow/pipeline.py), ~0.7 s sooner to a built job.
A batch job has no compiled plan; a backfill keeps its groups' window shapes here the same way (job/flow/backfill.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyflink.table import CompiledPlan, PlanReference, StatementSet, StreamTableEnvironment, TableResult
from pyflink.version import __version__ as FLINK_VERSION

from connectors.featurestore.model import FeatureGroupDefinition
from job.paths import CACHE, CODE_ROOT

log = logging.getLogger(__name__)

PLAN_CACHE = Path(os.environ.get("CHAINFEAT_PLAN_CACHE", CACHE / "plans"))
KEPT_PLANS = 16  # the most recently used; every code or SQL change makes a new one (~100 KB each)
# The code that shapes the plan beyond the SQL: the Table API inserts, the writer's signature, the feature types.
_PLAN_CODE = ("job", "udfs", "connectors/featurestore")
# Settings read by the planner (the rest, e.g. checkpointing, are read when the plan is executed).
_PLANNER_PREFIXES = ("table.", "parallelism.", "execution.runtime-mode")
GROUPS_BESIDE_PLAN = "groups"  # beside each plan: the feature groups its job writes


def plan_key(statements: Sequence[str], settings: Mapping[str, str], locations: Iterable[str]) -> str:
    """What a plan is made of, as a digest: ``statements`` (in the order the job ran them) with each of
    ``locations`` (the run's rendered paths and endpoints) blanked, the planner's ``settings``, the Flink
    version and the code under _PLAN_CODE."""
    digest = hashlib.sha256()
    digest.update(f"flink {FLINK_VERSION}\n".encode())
    blanked = sorted((location for location in locations if location), key=len, reverse=True)
    for statement in statements:
        for location in blanked:
            statement = statement.replace(location, "<location>")
        digest.update(f"statement {len(statement)}\n{statement}\n".encode())
    for key in sorted(settings):
        if key.startswith(_PLANNER_PREFIXES):
            digest.update(f"setting {key}={settings[key]}\n".encode())
    for directory in _PLAN_CODE:
        for path in sorted((CODE_ROOT / directory).rglob("*.py")):
            digest.update(f"code {path.relative_to(CODE_ROOT)}\n".encode() + path.read_bytes())
    return digest.hexdigest()[:24]


@dataclass
class PlanCache:
    """Compiled plans by key, one JSON file each, written whole (temporary file + rename)."""

    directory: Path = PLAN_CACHE

    def path(self, key: str) -> Path:
        return self.directory / f"plan-{key}.json"

    def beside_path(self, kind: str, key: str) -> Path:
        """What the cache keeps beside a plan, or for a job that has none (a batch job): ``<kind>-<key>.json``."""
        return self.directory / f"{kind}-{key}.json"

    def read_beside(self, kind: str, key: str) -> object | None:
        """The JSON kept as ``kind`` under ``key``; None if there is none or it does not parse."""
        path = self.beside_path(kind, key)
        try:
            value = json.loads(path.read_text())
            os.utime(path)  # recently used: kept by the pruning in write_beside()
        except FileNotFoundError:  # not derived yet under this key: the usual case after any change
            return None
        except (OSError, ValueError) as error:
            log.info("nothing usable cached as %s %s (%s)", kind, key, error)
            return None
        return value

    def write_beside(self, kind: str, key: str, value: object) -> bool:
        """Keep ``value`` (JSON) as ``kind`` under ``key``, written whole; the most recently used KEPT_PLANS of a
        kind stay."""
        try:
            self._write(self.beside_path(kind, key), json.dumps(value))
            for stale in sorted(self.directory.glob(f"{kind}-*.json"), key=lambda p: p.stat().st_mtime)[:-KEPT_PLANS]:
                stale.unlink(missing_ok=True)
        except OSError as error:  # a read-only home: the run goes on, the next one derives it again
            log.warning("could not cache %s in %s: %s", kind, self.directory, error)
            return False
        return True

    def _write(self, path: Path, content: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.directory, suffix=".partial", delete=False) as partial:
            partial.write(content)
        os.replace(partial.name, path)

    def feature_groups(self, key: str) -> list[FeatureGroupDefinition] | None:
        """The feature groups of the job planned under ``key``; None unless its plan is cached too."""
        if not self.path(key).exists():
            return None
        try:
            groups = [FeatureGroupDefinition.from_api(group) for group in self.read_beside(GROUPS_BESIDE_PLAN, key) or []]
        except (ValueError, TypeError, AttributeError) as error:  # not ours: plan again
            log.info("no usable feature groups beside the cached plan %s (%s)", key, error)
            return None
        return groups or None  # a job writes at least one group

    def load(self, table_env: StreamTableEnvironment, key: str) -> CompiledPlan | None:
        path = self.path(key)
        if not path.exists():
            return None
        try:
            os.utime(path)  # recently used: kept by the pruning in store()
            reference = PlanReference.from_json_string(path.read_text())
            # Not table_env.load_plan: PyFlink 2.3's gives the plan the Java environment, so its execute() fails
            # ("_before_execute does not exist"); this is that method with the Python one.
            return CompiledPlan(j_compiled_plan=table_env._j_tenv.loadPlan(reference._j_plan_reference), t_env=table_env)
        except Exception as error:  # a plan this Flink or catalog no longer takes: plan again
            log.warning("the cached plan %s does not load (%s); planning the job again", path, str(error).splitlines()[0])
            return None

    def store(self, key: str, plan: CompiledPlan, locations: Iterable[str],
              feature_groups: Sequence[FeatureGroupDefinition] = ()) -> bool:
        text = plan.as_json_string()
        held = [location for location in locations if location and location in text]
        if held:  # a location used outside a table's options: this plan is this run's only
            log.info("not caching the job's plan: it holds %s", held[0])
            return False
        # The groups first: a plan on disk has its groups beside it.
        if not self.write_beside(GROUPS_BESIDE_PLAN, key, [group.to_api() for group in feature_groups]):
            return False
        try:
            self._write(self.path(key), text)
            for stale in sorted(self.directory.glob("plan-*.json"), key=lambda p: p.stat().st_mtime)[:-KEPT_PLANS]:
                stale.unlink(missing_ok=True)
        except OSError as error:  # a read-only home: the run goes on, the next one plans again
            log.warning("could not cache the job's plan in %s: %s", self.directory, error)
            return False
        return True


def execute_from_plan(table_env: StreamTableEnvironment, statement_set: Callable[[], StatementSet], key: str | None,
                      cache: PlanCache | None, locations: Sequence[str] = (),
                      feature_groups: Sequence[FeatureGroupDefinition] = ()) -> tuple[TableResult, bool]:
    """Execute the job from its compiled plan: the one cached under ``key`` if there is one, else the job's
    statement set (``statement_set()`` builds it) compiled now, and cached with its ``feature_groups`` unless it
    holds one of ``locations``. Returns the result and whether the plan was loaded."""
    plan = cache.load(table_env, key) if cache and key else None
    loaded = plan is not None
    if plan is None:
        plan = statement_set().compile_plan()
        if cache and key:
            cache.store(key, plan, locations, feature_groups)
    return plan.execute(), loaded
