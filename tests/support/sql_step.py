"""One SQL step of the job run alone on a few rows, as Beam tests one transform: rows go in as the typed
`transactions` stream, the step's files (sql/lateness.sql, sql/dedup.sql, a feature file) run as the job runs
them, and the rows of one of their views come out."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from pyflink.datastream import StreamExecutionEnvironment
from pyflink.table import DataTypes, StreamTableEnvironment
from pyflink.table.expressions import col

from job.flow import sql_files, sql_pipeline
from job.flow.config import JobConfig, load_property_groups
from job.flow.flink_settings import flink_configuration

INPUT_TABLE = Path(__file__).resolve().parent / "sql" / "transactions_table.sql"


def run_step(rows: list[dict], files: list[Path], output_view: str, work_dir: Path) -> list[dict]:
    """The rows of ``output_view`` once ``files`` ran over ``rows`` (dicts of the transaction columns;
    ``time`` is the event time), read to the end; event-time columns (ts) as unix seconds."""
    config = JobConfig.from_properties(load_property_groups(), work_dir)
    rows_dir = work_dir / "rows"
    rows_dir.mkdir(parents=True, exist_ok=True)
    (rows_dir / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    params = {**sql_pipeline.parameters(config), "rows_uri": rows_dir.resolve().as_uri()}
    table_env = StreamTableEnvironment.create(
        StreamExecutionEnvironment.get_execution_environment(flink_configuration(config)))
    for path in [INPUT_TABLE, *files]:
        for statement in sql_files.statements(path, params):
            table_env.execute_sql(statement)
    table = table_env.from_path(output_view)
    schema = table.get_resolved_schema()
    names = schema.get_column_names()
    # pyflink cannot collect TIMESTAMP_LTZ values: they come out as TIMESTAMP (UTC, the job's time zone).
    instants = {name for name, kind in zip(names, schema.get_column_data_types()) if str(kind).startswith("LOCALZONEDTIMESTAMP")}
    table = table.select(*[col(name).cast(DataTypes.TIMESTAMP(3)).alias(name) if name in instants else col(name)
                           for name in names])
    with table.execute().collect() as results:
        return [{name: _epoch_s(value) if name in instants else value for name, value in zip(names, row)}
                for row in results]


def _epoch_s(moment: datetime | None) -> float | None:
    return None if moment is None else moment.replace(tzinfo=timezone.utc).timestamp()
