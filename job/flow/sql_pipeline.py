"""The job's SQL files in the order they run, the streaming job's and the backfill's side by side, and the values
they take from the configuration (parameters).

stream:   sources/<deployment>.sql → parse.sql → lateness.sql → dedup.sql → inputs_outputs.sql → sinks' tables
          → features/*.sql → sinks' INSERTs (dead letter, late, dropped duplicates; on the local feed its read progress
          and computed windows)
backfill: sources/archive_batch.sql → parse.sql → backfill/in_range.sql → dedup.sql → inputs_outputs.sql
          → backfill/coverage.sql → sinks' tables → features/*.sql → the dead letter (backfill/dead_letter.sql) and the
          backfill's report (backfill/outputs.sql)
Both end in each feature group's writer (udfs/feature_store_writer.py); a backfill writes complete windows only.
"""

from __future__ import annotations

from pathlib import Path

from job.flow import sql_files
from job.flow.config import JobConfig
from job.flow.sql_files import SQL_DIR, feature_files

# How soon the job's progress sink (sinks/progress.sql) rolls a part file so that the next checkpoint can commit it:
# every feed publication waits for one commit, so this is most of a publication round's latency.
PROGRESS_ROLL_S = 0.1
SOURCES, SINKS, BACKFILL = SQL_DIR / "sources", SQL_DIR / "sinks", SQL_DIR / "backfill"
PARSE, LATENESS, DEDUP = SQL_DIR / "parse.sql", SQL_DIR / "lateness.sql", SQL_DIR / "dedup.sql"
INPUTS_OUTPUTS = SQL_DIR / "inputs_outputs.sql"
# The streaming job's sink of the duplicates it drops (sinks/duplicates.sql): Flink names its operator after it, and
# its records in are the duplicates dropped (job/local/monitor.py, the CloudWatch dashboard).
DUPLICATES_SINK = "dropped_duplicates"
# The tables every job's writers and outputs need, created after its views and before its feature files.
SINK_TABLES = (SINKS / "files.sql", SINKS / "feature_store.sql")

# The backfill's views up to unique_transactions and its inputs and outputs: the streaming job's, with its batch range
# in place of lateness.sql (CURRENT_WATERMARK means nothing in batch), then the archive's coverage.
BACKFILL_VIEWS = (SOURCES / "archive_batch.sql", PARSE, BACKFILL / "in_range.sql", DEDUP, INPUTS_OUTPUTS,
                  BACKFILL / "coverage.sql")
BACKFILL_OUTPUTS = (BACKFILL / "dead_letter.sql", BACKFILL / "outputs.sql")


def stream_source(config: JobConfig) -> Path:
    """The source table's file: one per source type and shape (bounded or not, custom endpoint or not)."""
    if config.source_type == "spool":
        return SOURCES / ("spool.sql" if config.monitor_interval_s else "spool_bounded.sql")
    return SOURCES / ("kinesis_at_endpoint.sql" if config.kinesis_endpoint_url else "kinesis.sql")


def stream_views(config: JobConfig) -> list[Path]:
    """The streaming job's source and views up to unique_transactions and its inputs and outputs."""
    return [stream_source(config), PARSE, LATENESS, DEDUP, INPUTS_OUTPUTS]


def stream_outputs(config: JobConfig) -> list[Path]:
    """The sinks/*.sql files whose INSERTs join the streaming job, after its feature files."""
    local_feed = ["progress.sql", "computed.sql"] if config.source_type == "spool" else []
    return [SINKS / name for name in ("dead_letter.sql", "late.sql", "duplicates.sql", *local_feed)]


def stream_files(config: JobConfig) -> list[Path]:
    """Every file of the streaming job, in the order it runs them."""
    return [*stream_views(config), *SINK_TABLES, *feature_files(config.features_dir), *stream_outputs(config)]


def parameters(config: JobConfig) -> dict[str, object]:
    """The values the job's .sql files take from ``config``."""
    params: dict[str, object] = {
        "feed_uri": config.feed_uri,
        "monitor_interval": f"{round((config.monitor_interval_s or 0) * 1000)} ms",
        "kinesis_stream_arn": config.kinesis_stream_arn,
        "kinesis_init_position": config.kinesis_init_position,
        "kinesis_endpoint_url": config.kinesis_endpoint_url or "",
        "aws_region": config.aws_region,
        "watermark_delay_s": config.watermark_delay_s,
        "future_tolerance_s": config.future_tolerance_s,
        "past_tolerance_s": config.past_tolerance_s,
        "dead_letter_uri": config.dead_letter_uri,
        "late_uri": config.late_uri,
        "progress_uri": config.progress_uri,
        "progress_roll": f"{round(PROGRESS_ROLL_S * 1000)} ms",
        "computed_uri": config.computed_uri,
        "duplicates_sink": sql_files.Fragment(DUPLICATES_SINK),  # a table name: filled in as SQL
    }
    params["transaction_columns"] = sql_files.fragment("transaction_columns.sql", params)
    params["rejection_reason"] = sql_files.fragment("rejection_reason.sql", params)
    params["dead_letter_line"] = sql_files.fragment("dead_letter_line.sql", params)
    params["transaction_fields"] = sql_files.fragment("sources/transaction_fields.sql", params)
    params["transaction_lines"] = sql_files.fragment("sources/transaction_lines.sql", params)
    return params
