"""Builds the Flink job from sql/ and the configuration.

source lines → parse/validate, typed (dead letter) → lateness split (late output) → dedup (keyed state per
event-time second) → unique_transactions → features/*.sql (any window, any key) → feature-store writer
(Python, one row per window); on the local feed, the read progress the feed publisher waits for.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence

from pyflink.common import Configuration
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.table import DataTypes, StatementSet, StreamTableEnvironment, Table, TableEnvironment
from pyflink.table.expressions import call, col, lit

from connectors.featurestore.client import UNLIMITED_ATTEMPTS, FeatureStoreConfig
from udfs.feature_store_writer import feature_store_writer
from connectors.featurestore.model import FeatureGroupDefinition, FeatureType
from job import sql_files
from job.compiled_plan import PlanCache, execute_from_plan, plan_key
from job.config import Deployment, JobConfig
from job.jvm import CACHE, configure_local_jvm
from job.managed_settings import refuse_unlisted
from job.monitor import METRICS_REFRESH_S
from job.worker_boot import worker_launcher
from udfs.metrics import register_side_output_counters

log = logging.getLogger(__name__)

EVENT_TIME_COLUMN = "event_time"
# The streaming job's views, after its source; a backfill (job/backfill.py) puts its batch range in place of
# lateness.sql (CURRENT_WATERMARK means nothing in batch) and keeps the rest.
STREAM_VIEW_FILES = tuple(sql_files.SQL_DIR / name for name in ("parse.sql", "lateness.sql", "dedup.sql"))
WRITER_FUNCTION = "chainfeat_write_{group}"  # the feature-store writer of one group, a temporary system function
_SINK_TABLE_FILES = tuple(sql_files.SQL_DIR / "sinks" / name for name in ("files.sql", "feature_store.sql"))


class FeatureFileError(ValueError):
    """A feature file Flink cannot run, as one message: ``file:line:column: what is wrong``."""


class ConnectorMissing(RuntimeError):
    pass


def flink_configuration(config: JobConfig, rest_port: int | None = None,
                        deployment: Deployment = Deployment.LOCAL, batch: bool = False) -> Configuration:
    """The job's Flink settings for where it runs (see Deployment): locally all of them; a cluster owns its
    REST endpoint and Python interpreter; on Managed Flink the job sets only keys the service lets application
    code set (job/managed_settings.py) and the service sets the rest from the application's configuration."""
    return _configuration(flink_settings(config, rest_port, deployment, batch))


def _configuration(settings: dict[str, str]) -> Configuration:
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
        # Measured (bench/end_to_end.py): without object reuse Flink copies each row for every branch of the
        # plan (dead letter, late, on time, progress); with digest reuse every feature group and output shares
        # one parse and one dedup instead of each planning its own.
        "pipeline.object-reuse": "true",
        "table.optimizer.reuse-optimize-block-with-digest-enabled": "true",
    }
    # Managed Flink's application configuration sets these (the CDK app, chainfeat submit: ParallelismConfiguration,
    # CheckpointConfiguration with the Job checkpoint.interval); restarts and retained checkpoints are the
    # service's own (exponential-delay restarts, one retained checkpoint).
    service_owned = {
        "parallelism.default": "1",  # parallelism 2 on the file source gave wrong windows (measured; no test proves 2 exact)
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
        # In-process MiniCluster: the workers use this interpreter (booted by job/worker_boot.py), and its
        # dashboard/REST API binds loopback only; port 0 picks a free one.
        settings.setdefault("python.executable", worker_launcher(CACHE / "jvm"))
        settings.setdefault("python.client.executable", sys.executable)
        settings.update({"rest.port": str(rest_port or 0), "rest.bind-address": "127.0.0.1", "rest.address": "127.0.0.1",
                         "metrics.fetcher.update-interval": str(round(METRICS_REFRESH_S * 1000))})
    if config.restore_from:
        settings["execution.savepoint.path"] = config.restore_from
    if deployment is Deployment.MANAGED:
        refuse_unlisted(settings)
    return settings


def feature_group_definition(table_env: TableEnvironment, path: Path) -> FeatureGroupDefinition:
    """The feature group a features/*.sql view defines, derived from its output schema."""
    view = path.stem
    schema = table_env.from_path(view).get_resolved_schema()
    features: dict[str, FeatureType] = {}
    for name, data_type in zip(schema.get_column_names(), schema.get_column_data_types()):
        type_name = str(data_type).upper()
        if type_name.startswith(("VARCHAR", "STRING", "CHAR")):
            features[name] = FeatureType.STRING
        elif type_name.startswith(("BIGINT", "INT", "SMALLINT", "TINYINT")):
            features[name] = FeatureType.INTEGRAL
        elif type_name.startswith(("DOUBLE", "FLOAT", "DECIMAL")):
            features[name] = FeatureType.FRACTIONAL
        else:
            raise FeatureFileError(
                f"{file_position(path, _line_naming(path, name))}: column {name} has type {data_type}; feature columns must "
                "be STRING, an integer type or DOUBLE (cast it in the SELECT)"
            )
    names = list(features)
    if EVENT_TIME_COLUMN not in features:
        raise FeatureFileError(f"{file_position(path)}: the view must output a column named {EVENT_TIME_COLUMN} "
                               "(the window end in unix seconds, DOUBLE)")
    if names[0] == EVENT_TIME_COLUMN:
        raise FeatureFileError(f"{file_position(path)}: the first column is the record identifier; it cannot be "
                               f"{EVENT_TIME_COLUMN}")
    return FeatureGroupDefinition(
        name=view,
        record_identifier=names[0],
        event_time_feature=EVENT_TIME_COLUMN,
        features=features,
        description=f"Features computed by chainfeat from sql/features/{path.name}",
    )


def file_position(path: Path, line: int | None = None, column: int | None = None) -> str:
    try:
        shown = str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        shown = str(path)
    return shown + (f":{line}" if line else "") + (f":{column}" if line and column else "")


def _line_naming(path: Path, name: str) -> int | None:
    """The last line of a feature file that names ``name`` (its alias in the SELECT, as a rule)."""
    lines = path.read_text().splitlines()
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    found = [number for number, text in enumerate(lines, start=1) if pattern.search(text.split("--")[0])]
    return found[-1] if found else None


_POSITION = re.compile(r"(?:From line|at line) (\d+), column (\d+)")


def sql_error(statement: sql_files.Statement, error: Exception) -> FeatureFileError:
    """Flink's error for one statement as ``file:line:column: message`` (the Java exception's first line,
    positions moved from the statement to the file), without the stack trace."""
    text = str(error)
    match = re.search(r"^: ([\w.$]+(?:Exception|Error)): (.*)$", text, re.MULTILINE)
    message = match.group(2) if match else text.strip().splitlines()[0]
    if match and "SqlParserException" in match.group(1):
        following = text[match.end():].split("\n\tat ")[0].strip().splitlines()
        expected = [line.strip().strip('"').rstrip(" .") for line in following[1:] if line.strip()]
        if expected:
            message += " Expected one of: " + ", ".join(expected[:8]) + (", ..." if len(expected) > 8 else "")
    message = re.sub(r"^(SQL (?:parse|validation) failed\. )", "", message)
    position = _POSITION.search(message)
    line = column = None
    if position:
        line, column = statement.file_line(int(position.group(1))), int(position.group(2))
        message = re.sub(r"^From line \d+, column \d+ to line \d+, column \d+: ", "", message)
        message = re.sub(r" at line \d+, column \d+", "", message)
    return FeatureFileError(f"{file_position(statement.path, line or statement.line, column)}: {message}")


@dataclass
class Pipeline:
    table_env: StreamTableEnvironment
    # The job's statement set, or what builds it when it is first needed: a run whose plan is cached builds
    # it only if that plan no longer loads (build_pipeline).
    job: StatementSet | Callable[[], StatementSet]
    feature_groups: list[FeatureGroupDefinition]
    deployment: Deployment = Deployment.LOCAL
    flink_settings: dict[str, str] = field(default_factory=dict)  # what flink_configuration set
    # A streaming job executes from its compiled plan (job/compiled_plan.py): the key of that plan (None: a
    # batch job, executed from its statement set), the run's locations, the cache (local runs only).
    plan_key: str | None = None
    locations: Sequence[str] = ()
    plan_cache: PlanCache | None = None
    plan_loaded: bool = False  # the last execute_async ran a cached plan

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
    params = params if params is not None else sql_files.parameters(config)
    executed = executed if executed is not None else []
    register_side_output_counters(table_env)
    if view_files is None:
        view_files = [sql_files.source_file(config), *STREAM_VIEW_FILES]
    for path in [*view_files, *_SINK_TABLE_FILES]:
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
    for statement in sql_files.statements(path, params if params is not None else sql_files.parameters(config)):
        with _connector_hint(config):
            if _is_insert(statement):
                statement_set.add_insert_sql(statement)
            else:
                table_env.execute_sql(statement)
        if executed is not None:
            executed.append(statement)


def _sink_files(config: JobConfig) -> list[Path]:
    """The sinks/*.sql files whose INSERTs join the streaming job (after its views and feature files)."""
    names = ["dead_letter.sql", "late.sql", *(["progress.sql", "computed.sql"] if config.source_type == "spool" else [])]
    return [sql_files.SQL_DIR / "sinks" / name for name in names]


def job_statements(config: JobConfig, params: Mapping[str, object]) -> list[sql_files.Statement]:
    """Every statement the streaming job runs, in the order build_pipeline runs them: what its plan's key is
    made of, known before anything is planned."""
    paths = [sql_files.source_file(config), *STREAM_VIEW_FILES, *_SINK_TABLE_FILES,
             *sql_files.feature_files(config.features_dir), *_sink_files(config)]
    return [statement for path in paths for statement in sql_files.located_statements(path, params)]


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
    plan does not load."""
    if deployment is Deployment.LOCAL:
        configure_local_jvm()  # this process starts the JVM: the class archive and the collector (job/jvm.py)
        plan_cache = plan_cache or PlanCache()
    settings = flink_settings(config, rest_port, deployment)
    env = StreamExecutionEnvironment.get_execution_environment(_configuration(settings))
    table_env = StreamTableEnvironment.create(env)
    params = sql_files.parameters(config)
    statements = [statement.text for statement in job_statements(config, params)]
    locations = sql_files.locations(params)
    key = plan_key(statements, settings, locations)
    cached_groups = plan_cache.feature_groups(key) if plan_cache else None
    if cached_groups is not None:
        register_side_output_counters(table_env)
        _create_tables(table_env, statements, config)  # a compiled plan holds the views and the inserts already
        register_feature_store_writers(table_env, cached_groups, config)

        def planned_again() -> StatementSet:
            for view in filter(_is_view, statements):
                table_env.execute_sql(view)
            return _statement_set(table_env, statements, cached_groups, config)

        return Pipeline(table_env, planned_again, cached_groups, deployment, settings, plan_key=key,
                        locations=locations, plan_cache=plan_cache)

    executed: list[str] = []
    groups = register_views(table_env, config, params=params, executed=executed)
    sink_statements = [statement for path in _sink_files(config) for statement in sql_files.statements(path, params)]
    _create_tables(table_env, sink_statements, config)
    executed += sink_statements
    register_feature_store_writers(table_env, groups, config)
    if executed != statements:  # a key that does not say what the plan is made of must not name it
        log.warning("the job ran other statements than its plan's key holds; not caching its plan")
        plan_cache = None
    return Pipeline(table_env, _statement_set(table_env, statements, groups, config), groups, deployment, settings,
                    plan_key=key, locations=locations, plan_cache=plan_cache)


def _statement_set(table_env: StreamTableEnvironment, statements: Sequence[str],
                   groups: Sequence[FeatureGroupDefinition], config: JobConfig) -> StatementSet:
    """The job's one statement set (one plan, so the source and the dedup state serve every output): the
    sinks' INSERTs, then each group's windows into computed_windows (the local feed) and the writer."""
    statement_set = table_env.create_statement_set()
    for insert in filter(_is_insert, statements):
        with _connector_hint(config):
            statement_set.add_insert_sql(insert)
    if config.source_type == "spool":
        for definition in groups:
            computed = table_env.from_path(definition.name).select(
                lit(definition.name), col(definition.record_identifier).cast(DataTypes.STRING()),
                col(definition.event_time_feature))
            statement_set.add_insert("computed_windows", computed)
    add_feature_store_inserts(statement_set, [(definition, table_env.from_path(definition.name)) for definition in groups])
    return statement_set


def register_feature_store_writers(table_env: TableEnvironment, groups: Sequence[FeatureGroupDefinition],
                                   config: JobConfig) -> None:
    """Each group's feature-store writer (udfs/feature_store_writer.py) as a temporary function
    (WRITER_FUNCTION): a compiled plan names it, and each run registers its own (its endpoint, its retries)."""
    # The writer rides out an outage up to the configured time, however many attempts that takes (a Flink
    # restart after it is exact too, but costs a re-read from the last checkpoint).
    store = FeatureStoreConfig(endpoint_url=config.featurestore_endpoint_url, region=config.featurestore_region,
                               max_attempts=UNLIMITED_ATTEMPTS, total_timeout_s=config.featurestore_retry_timeout_s)
    for definition in groups:
        table_env.create_temporary_system_function(
            WRITER_FUNCTION.format(group=definition.name),
            feature_store_writer(definition.name, list(definition.features), store, definition.event_time_feature))


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
    configure_local_jvm()
    table_env = StreamTableEnvironment.create(
        StreamExecutionEnvironment.get_execution_environment(flink_configuration(config))
    )
    return register_views(table_env, config)
