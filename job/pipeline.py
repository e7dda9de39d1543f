"""Builds the Flink job from sql/ and the configuration.

source lines → parse/validate (dead letter) → dedup (keyed state, TTL) → lateness split (late output)
→ features/*.sql (tumbling windows) → feature-store sink (Python, one row per window).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass
from typing import Iterator

from pyflink.common import Configuration
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.table import StatementSet, StreamTableEnvironment
from pyflink.table.expressions import col

from connectors.featurestore.client import FeatureStoreConfig
from connectors.featurestore.flink_sink import feature_store_writer
from connectors.featurestore.model import FeatureGroupDefinition, FeatureType
from job import sql_files
from job.config import JobConfig
from udfs.metrics import register_side_output_counters

log = logging.getLogger(__name__)

EVENT_TIME_COLUMN = "event_time"
_PIPELINE_FILES = ("parse.sql", "dedup.sql", "lateness.sql")


class FeatureSchemaError(ValueError):
    pass


class ConnectorMissing(RuntimeError):
    pass


def flink_configuration(config: JobConfig, rest_port: int | None = None, local: bool = True,
                        managed: bool = False) -> Configuration:
    """The job's Flink settings. ``local``: this process runs the MiniCluster (chainfeat run, tests);
    otherwise a cluster (Managed Flink, `flink run`) owns its REST endpoint and Python interpreter.
    ``managed``: on Managed Flink the service owns checkpointing and restarts (set by the CDK app)."""
    flink = Configuration()
    settings = {
        "parallelism.default": "1",  # parallelism 2 on the file source gave wrong windows (DESIGN.md)
        "table.local-time-zone": "UTC",
        "table.exec.state.ttl": config.dedup_ttl,
        "table.exec.source.idle-timeout": config.idle_timeout,
    }
    operational = {
        "execution.checkpointing.interval": config.checkpoint_interval,
        "execution.checkpointing.dir": config.checkpoint_uri,
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "3",
        # A failing job restarts from its last checkpoint a few times, then fails visibly.
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "3",
        "restart-strategy.fixed-delay.delay": "5 s",
    }
    if not managed:
        settings.update(operational)
    settings.update(config.extra_flink_config)
    if local:
        # In-process MiniCluster: the workers use this interpreter, and its dashboard/REST API binds
        # loopback only; port 0 picks a free one.
        settings.setdefault("python.executable", sys.executable)
        settings.setdefault("python.client.executable", sys.executable)
        settings.update({"rest.port": str(rest_port or 0), "rest.bind-address": "127.0.0.1", "rest.address": "127.0.0.1"})
    if config.restore_from:
        settings["execution.savepoint.path"] = config.restore_from
    for key, value in settings.items():
        flink.set_string(key, value)
    return flink


def feature_group_definition(table_env: StreamTableEnvironment, view: str) -> FeatureGroupDefinition:
    """The feature group a features/*.sql view defines, derived from its output schema."""
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
            raise FeatureSchemaError(
                f"sql/features/{view}.sql: column {name} has type {data_type}; feature columns must be "
                "STRING, an integer type or DOUBLE (cast it in the SELECT)"
            )
    names = list(features)
    if EVENT_TIME_COLUMN not in features:
        raise FeatureSchemaError(f"sql/features/{view}.sql must output a column named {EVENT_TIME_COLUMN}")
    return FeatureGroupDefinition(
        name=view,
        record_identifier=names[0],
        event_time_feature=EVENT_TIME_COLUMN,
        features=features,
        description=f"Features computed by chainfeat from sql/features/{view}.sql",
    )


@dataclass
class Pipeline:
    table_env: StreamTableEnvironment
    statement_set: StatementSet
    feature_groups: list[FeatureGroupDefinition]

    def execute_async(self, job_name: str = "chainfeat"):
        """Submit the job; returns pyflink's JobClient."""
        self.table_env.get_config().set("pipeline.name", job_name)
        return self.statement_set.execute().get_job_client()


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


def register_views(table_env: StreamTableEnvironment, config: JobConfig) -> list[FeatureGroupDefinition]:
    """Create the source, every view and the sink tables; returns the feature groups the features/*.sql
    views define (also what the CDK app derives the SageMaker feature groups from)."""
    params = config.sql_params
    register_side_output_counters(table_env)
    source_file = sql_files.SQL_DIR / "sources" / f"{config.source_type}.sql"
    for path in [source_file, *(sql_files.SQL_DIR / name for name in _PIPELINE_FILES),
                 sql_files.SQL_DIR / "sinks" / "files.sql", sql_files.SQL_DIR / "sinks" / "feature_store.sql",
                 *sql_files.feature_files()]:
        for statement in sql_files.statements(path, params):
            with _connector_hint(config):
                table_env.execute_sql(statement)
    return [feature_group_definition(table_env, path.stem) for path in sql_files.feature_files()]


def build_pipeline(config: JobConfig, rest_port: int | None = None, local: bool = True,
                   managed: bool = False) -> Pipeline:
    env = StreamExecutionEnvironment.get_execution_environment(flink_configuration(config, rest_port, local, managed))
    table_env = StreamTableEnvironment.create(env)
    groups = register_views(table_env, config)

    # One statement set: one plan, so the source and the dedup state serve every output.
    statement_set = table_env.create_statement_set()
    for statement in sql_files.statements(sql_files.SQL_DIR / "sinks" / "side_outputs.sql", config.sql_params):
        with _connector_hint(config):
            statement_set.add_insert_sql(statement)
    store = FeatureStoreConfig(endpoint_url=config.featurestore_endpoint_url, region=config.featurestore_region)
    for definition in groups:
        columns = list(definition.features)
        write = feature_store_writer(definition.name, columns, store, definition.event_time_feature)
        rows_written = table_env.from_path(definition.name).select(write(*[col(name) for name in columns]).alias("written"))
        statement_set.add_insert("feature_store_writes", rows_written)
    return Pipeline(table_env, statement_set, groups)


def derive_feature_groups(config: JobConfig) -> list[FeatureGroupDefinition]:
    """The feature groups of sql/features/, resolved by Flink's planner without running anything."""
    table_env = StreamTableEnvironment.create(
        StreamExecutionEnvironment.get_execution_environment(flink_configuration(config, local=True))
    )
    return register_views(table_env, config)
