"""Builds the Flink job from sql/ and the configuration.

source lines → parse/validate, typed (dead letter) → lateness split (late output) → dedup (keyed state per
event-time second) → unique_transactions (and unique_inputs / unique_outputs) → features/*.sql (any window, any key)
→ feature-store writer (Python, one row per window); on the local feed, the read progress the feed publisher waits for.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyflink.datastream import StreamExecutionEnvironment
from pyflink.table import DataTypes, ExplainDetail, StatementSet, StreamTableEnvironment, Table, TableEnvironment
from pyflink.table.expressions import call, col, lit

from connectors.featurestore.client import UNLIMITED_ATTEMPTS, FeatureStoreConfig
from connectors.featurestore.model import FeatureGroupDefinition
from job.flow import sql_files, sql_pipeline
from job.flow.config import Deployment, JobConfig
from job.flow.feature_groups import (
    FeatureFileError,
    feature_group_definition,
    file_position,
    refuse_unusable_file_name,
    sql_error,
    updating_view_error,
    view_error,
)
from job.flow.flink_settings import configuration, flink_configuration, flink_settings
from job.flow.managed_keys import refuse_unlisted
from job.flow.plan_cache import PlanCache, execute_from_plan, plan_key
from job.flow.window_shapes import cached_group_windows, group_windows
from udfs.coverage import WindowShape
from udfs.feature_store_writer import feature_store_writer
from udfs.metrics import register_side_output_counters

log = logging.getLogger(__name__)

WRITER_FUNCTION = "chainfeat_write_{group}"  # the feature-store writer of one group, a temporary system function


class ConnectorMissing(RuntimeError):
    pass


@dataclass
class Pipeline:
    table_env: StreamTableEnvironment
    # The job's statement set, or what builds it when it is first needed: a run whose plan is cached builds
    # it only if that plan no longer loads (build_pipeline).
    job: StatementSet | Callable[[], StatementSet]
    feature_groups: list[FeatureGroupDefinition]
    deployment: Deployment = Deployment.LOCAL
    flink_settings: dict[str, str] = field(default_factory=dict)  # what flink_configuration set
    # A streaming job executes from its compiled plan (job/flow/plan_cache.py): the key of that plan (None: a
    # batch job, executed from its statement set), the run's locations, the cache (local runs only).
    plan_key: str | None = None
    locations: Sequence[str] = ()
    plan_cache: PlanCache | None = None
    plan_loaded: bool = False  # the last execute_async ran a cached plan
    # Each group's window (None: not one window), found when the job skips partial windows (JobConfig.coverage).
    window_shapes: Mapping[str, WindowShape | None] = field(default_factory=dict)

    @property
    def statement_set(self) -> StatementSet:
        if callable(self.job):
            self.job = self.job()
        return self.job

    def set_by_the_job(self) -> set[str]:
        """Every Flink key the job's code has set: its settings and what it (or PyFlink for it, e.g.
        add_python_file) set on the table config since."""
        return set(self.flink_settings) | set(self.table_env.get_config().get_configuration().key_set())

    def prepare(self, job_name: str = "chainfeat") -> None:
        """Name the job; on Managed Flink, refuse (by name) any key the service does not let code set."""
        self.table_env.get_config().set("pipeline.name", job_name)
        if self.deployment is Deployment.MANAGED:
            refuse_unlisted(self.set_by_the_job())

    def execute_async(self, job_name: str = "chainfeat"):
        """Submit the job; returns pyflink's JobClient."""
        self.prepare(job_name)
        if self.plan_key is None:
            return self.statement_set.execute().get_job_client()
        result, self.plan_loaded = execute_from_plan(self.table_env, lambda: self.statement_set, self.plan_key,
                                                     self.plan_cache, self.locations, self.feature_groups)
        return result.get_job_client()


@contextlib.contextmanager
def _connector_hint(config: JobConfig) -> Iterator[None]:
    """Turns the one error users hit without a connector jar into one that says what to add."""
    try:
        yield
    except Exception as error:  # py4j wraps the Java exception; its text is what tells
        if f"Could not find any factory for identifier '{config.source_type}'" in str(error):
            raise ConnectorMissing(
                f"the Flink connector for source type {config.source_type!r} is not on the job's classpath; "
                "pass its jar (chainfeat package downloads it into lib/) in pipeline.jars"
            ) from None
        raise


def register_views(table_env: TableEnvironment, config: JobConfig, view_files: Sequence[Path] | None = None,
                   features: Sequence[Path] | None = None, params: Mapping[str, object] | None = None,
                   executed: list[str] | None = None) -> list[FeatureGroupDefinition]:
    """Create the source, every view and the sink tables; returns the feature groups the features/*.sql
    views define (also what the CDK app derives the SageMaker feature groups from). A feature file Flink
    rejects raises FeatureFileError naming its file, line and column.

    ``view_files``: the source and the views up to unique_transactions (default: the streaming job's);
    ``features``: the feature files (default: every one in the features dir); ``params``: the values the
    files take (default: the configuration's); ``executed``: gets every statement run, in order."""
    params = params if params is not None else sql_pipeline.parameters(config)
    executed = executed if executed is not None else []
    register_side_output_counters(table_env)
    if view_files is None:
        view_files = sql_pipeline.stream_views(config)
    for path in [*view_files, *sql_pipeline.SINK_TABLES]:
        for statement in sql_files.statements(path, params):
            with _connector_hint(config):
                table_env.execute_sql(statement)
            executed.append(statement)
    if features is None:
        features = sql_files.feature_files(config.features_dir)
    if not features:
        raise FeatureFileError(f"{file_position(config.features_dir)}: no feature file (*.sql); add one, e.g. the "
                               "shipped sql/features/tx_minute_features.sql")
    groups = []
    for path in features:
        refuse_unusable_file_name(path)
        for statement in sql_files.located_statements(path, params):
            try:
                table_env.execute_sql(statement.text)
            except Exception as error:  # py4j carries Flink's exception; its text is what tells
                raise sql_error(statement, error) from None
            executed.append(statement.text)
        if path.stem not in table_env.list_temporary_views():
            raise FeatureFileError(f"{file_position(path)}: it must create a view named after the file: "
                                   f"CREATE TEMPORARY VIEW {path.stem} AS SELECT ...")
        groups.append(feature_group_definition(table_env, path))
    return groups


def add_inserts(table_env: TableEnvironment, statement_set: StatementSet, path: Path, config: JobConfig,
                params: Mapping[str, object] | None = None, executed: list[str] | None = None) -> None:
    """A sinks/*.sql file's statements: tables are created, INSERTs join the job's one statement set
    (``executed`` gets each statement, in order)."""
    for statement in sql_files.statements(path, params if params is not None else sql_pipeline.parameters(config)):
        with _connector_hint(config):
            if _is_insert(statement):
                statement_set.add_insert_sql(statement)
            else:
                table_env.execute_sql(statement)
        if executed is not None:
            executed.append(statement)


def job_statements(config: JobConfig, params: Mapping[str, object]) -> list[sql_files.Statement]:
    """Every statement the streaming job runs, in the order build_pipeline runs them: what its plan's key is
    made of, known before anything is planned."""
    return [statement for path in sql_pipeline.stream_files(config)
            for statement in sql_files.located_statements(path, params)]


_VIEW = re.compile(r"\s*CREATE\s+(TEMPORARY\s+)?VIEW\b", re.IGNORECASE)
_INSERT = re.compile(r"\s*INSERT\b", re.IGNORECASE)


def _is_view(statement: str) -> bool:
    return bool(_VIEW.match(sql_files.without_comments(statement)))


def _is_insert(statement: str) -> bool:
    return bool(_INSERT.match(sql_files.without_comments(statement)))


def _create_tables(table_env: TableEnvironment, statements: Sequence[str], config: JobConfig) -> None:
    """Run every statement that is neither a view nor an INSERT (the tables a plan names by identifier)."""
    for statement in statements:
        if not _is_view(statement) and not _is_insert(statement):
            with _connector_hint(config):
                table_env.execute_sql(statement)


def build_pipeline(config: JobConfig, rest_port: int | None = None,
                   deployment: Deployment = Deployment.LOCAL, plan_cache: PlanCache | None = None) -> Pipeline:
    """The streaming job. Locally, when the plan its statements key is cached with its feature groups, only the
    tables and functions that plan names are created (~0.7 s sooner); the views and inserts follow only if the
    plan does not load. ``plan_cache``: where compiled plans are kept (default: this user's cache for a local job,
    none elsewhere)."""
    if deployment is Deployment.LOCAL:
        plan_cache = plan_cache or PlanCache()
    settings = flink_settings(config, rest_port, deployment)
    env = StreamExecutionEnvironment.get_execution_environment(configuration(settings))
    table_env = StreamTableEnvironment.create(env)
    params = sql_pipeline.parameters(config)
    statements = [statement.text for statement in job_statements(config, params)]
    locations = sql_files.locations(params)
    key = plan_key(statements, settings, locations)
    cached_groups = plan_cache.feature_groups(key) if plan_cache else None
    cached_shapes = cached_group_windows(plan_cache, key, cached_groups) if plan_cache and cached_groups else None
    if cached_groups is not None and (cached_shapes is not None or not config.coverage.bounded):
        register_side_output_counters(table_env)
        _create_tables(table_env, statements, config)  # a compiled plan holds the views and the inserts already
        register_feature_store_writers(table_env, cached_groups, config, cached_shapes or {})

        def planned_again() -> StatementSet:
            for view in filter(_is_view, statements):
                table_env.execute_sql(view)
            return _statement_set(table_env, statements, cached_groups, config)

        return Pipeline(table_env, planned_again, cached_groups, deployment, settings, plan_key=key,
                        locations=locations, plan_cache=plan_cache, window_shapes=cached_shapes or {})

    executed: list[str] = []
    groups = register_views(table_env, config, params=params, executed=executed)
    sink_statements = [statement for path in sql_pipeline.stream_outputs(config) for statement in sql_files.statements(path, params)]
    _create_tables(table_env, sink_statements, config)
    executed += sink_statements
    if executed != statements:  # a key that does not say what the plan is made of must not name it
        log.warning("the job ran other statements than its plan's key holds; not caching its plan")
        plan_cache = None
    paths = sql_files.feature_files(config.features_dir)
    # Which rows are partial windows needs each view's window: found once per plan, kept beside it.
    shapes = group_windows(table_env, groups, {path.stem: path for path in paths}, plan_cache, key,
                           required=False) if config.coverage.bounded else {}
    register_feature_store_writers(table_env, groups, config, shapes)
    statement_set = _statement_set(table_env, statements, groups, config)
    refuse_what_flink_cannot_run(table_env, statement_set, groups, paths)
    return Pipeline(table_env, statement_set, groups, deployment, settings, plan_key=key, locations=locations,
                    plan_cache=plan_cache, window_shapes=shapes)


_UPDATING = re.compile(r"changelogMode=\[[^\]]*\b(UB|UA|D)\b")


def refuse_what_flink_cannot_run(table_env: TableEnvironment, statement_set: StatementSet,
                                 groups: Sequence[FeatureGroupDefinition], paths: Sequence[Path]) -> None:
    """Translate the whole job now, before anything starts (no replay, no feature group created), so that a feature
    view Flink accepts as SQL but cannot run as a job is one FeatureFileError naming its file: one whose rows change as
    transactions arrive (a GROUP BY without a window), or whose window Flink refuses when it translates it (a HOP
    whose slide does not divide its size). Only a job planned anew pays for it: a cached plan was checked."""
    try:
        statement_set.explain()
        return
    except Exception as error:  # py4j carries Flink's exception; find the view it comes from
        whole = error
    for definition, path in zip(groups, paths, strict=True):
        try:
            plan = table_env.from_path(definition.name).explain(ExplainDetail.CHANGELOG_MODE)
        except Exception as error:  # noqa: BLE001 - Flink's refusal of this view, named by its file below
            raise view_error(path, error) from None
        optimized = plan.split("== Optimized Physical Plan ==")[-1].strip().splitlines()
        if optimized and _UPDATING.search(optimized[0]):
            raise updating_view_error(path) from None
    raise whole


def _statement_set(table_env: StreamTableEnvironment, statements: Sequence[str],
                   groups: Sequence[FeatureGroupDefinition], config: JobConfig) -> StatementSet:
    """The job's one statement set (one plan, so the source and the dedup state serve every output): the
    sinks' INSERTs, then each group's windows into computed_windows (the local feed) and the writer."""
    statement_set = table_env.create_statement_set()
    for insert in filter(_is_insert, statements):
        with _connector_hint(config):
            statement_set.add_insert_sql(insert)
    feature_rows = [(definition, planned_view(table_env, definition.name)) for definition in groups]
    if config.source_type == "spool":
        for definition, rows in feature_rows:
            computed = rows.select(lit(definition.name), col(definition.record_identifier).cast(DataTypes.STRING()),
                                   col(definition.event_time_feature))
            statement_set.add_insert("computed_windows", computed)
    add_feature_store_inserts(statement_set, feature_rows)
    return statement_set


def planned_view(table_env: TableEnvironment, name: str) -> Table:
    """The view ``name`` planned once, for every output that reads it. A view read by name is expanded anew for each
    output; expansions of a view with CROSS JOIN UNNEST differ in their correlation variables ($cor5, $cor6), so
    Flink 2.3's sub-plan reuse (FLINK-39583, after 2.3) cannot see they are one and computes the view twice."""
    return table_env.sql_query(f"SELECT * FROM `{name}`")


def register_feature_store_writers(table_env: TableEnvironment, groups: Sequence[FeatureGroupDefinition],
                                   config: JobConfig, shapes: Mapping[str, WindowShape | None] | None = None) -> None:
    """Each group's feature-store writer (udfs/feature_store_writer.py) as a temporary function
    (WRITER_FUNCTION): a compiled plan names it, and each run registers its own (its endpoint, its retries, and
    what its data covers: with ``shapes``, each group's window, the writer skips partial windows)."""
    # The writer rides out an outage up to the configured time, however many attempts that takes (a Flink
    # restart after it is exact too, but costs a re-read from the last checkpoint).
    store = FeatureStoreConfig(endpoint_url=config.featurestore_endpoint_url, region=config.featurestore_region,
                               max_attempts=UNLIMITED_ATTEMPTS, total_timeout_s=config.featurestore_retry_timeout_s,
                               concurrency=config.featurestore_write_concurrency)
    for definition in groups:
        table_env.create_temporary_system_function(
            WRITER_FUNCTION.format(group=definition.name),
            feature_store_writer(definition.name, list(definition.features), store, definition.event_time_feature,
                                 new_group=definition.name in config.new_feature_groups,
                                 window=(shapes or {}).get(definition.name), coverage=config.coverage))


def add_feature_store_inserts(statement_set: StatementSet,
                              feature_rows: Sequence[tuple[FeatureGroupDefinition, Table]]) -> None:
    """Each group's feature rows through its writer (register_feature_store_writers), into the job's one
    statement set."""
    for definition, rows in feature_rows:
        function = WRITER_FUNCTION.format(group=definition.name)
        written = call(f"`{function}`", *[col(name) for name in definition.features]).alias("written")
        statement_set.add_insert("feature_store_writes", rows.select(written))


def derive_feature_groups(config: JobConfig) -> list[FeatureGroupDefinition]:
    """The feature groups of sql/features/, resolved by Flink's planner without running anything."""
    table_env = StreamTableEnvironment.create(
        StreamExecutionEnvironment.get_execution_environment(flink_configuration(config))
    )
    return register_views(table_env, config)
