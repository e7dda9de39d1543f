"""The source is chosen by configuration; everything after it is the same SQL for every deployment."""

from __future__ import annotations

import pytest

from job.flow import sql_files, sql_pipeline
from job.flow.config import ConfigError, JobConfig, load_property_groups
from job.flow.pipeline import ConnectorMissing, build_pipeline

ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/chainfeat-ingest"


def kinesis_groups(**source) -> dict:
    groups = load_property_groups()
    groups["Source"] = {"type": "kinesis", "stream.arn": ARN, "aws.region": "eu-west-1", **source}
    return groups


def test_kinesis_source_sql_carries_the_stream_and_the_shared_columns(tmp_path) -> None:
    config = JobConfig.from_properties(kinesis_groups(endpoint="http://127.0.0.1:4567"), tmp_path)
    params = sql_pipeline.parameters(config)
    assert sql_pipeline.stream_source(config).name == "kinesis_at_endpoint.sql"
    (statement,) = sql_files.statements(sql_pipeline.stream_source(config), params)
    for option in ("'connector' = 'kinesis'", f"'stream.arn' = '{ARN}'", "'aws.region' = 'eu-west-1'",
                   "'source.init.position' = 'TRIM_HORIZON'", "'format' = 'json'",
                   "'source.reader.empty-records-fetch-interval' = '1 s'",  # 5 reads/s per shard, with Firehose
                   "'aws.endpoint' = 'http://127.0.0.1:4567'"):
        assert option in statement
    (spool,) = sql_files.statements(sql_files.SQL_DIR / "sources" / "spool.sql", params)
    shared = params["transaction_lines"]
    assert shared in statement and shared in spool
    assert "WATERMARK FOR ts AS ts - INTERVAL '60' SECOND" in shared and "fee BIGINT" in shared


def test_values_are_quoted_so_a_quote_in_one_keeps_the_ddl_whole(tmp_path) -> None:
    config = JobConfig.from_properties(kinesis_groups(**{"stream.arn": ARN + "'; DROP"}), tmp_path)
    (statement,) = sql_files.statements(sql_pipeline.stream_source(config), sql_pipeline.parameters(config))
    assert f"'stream.arn' = '{ARN}''; DROP'," in statement
    assert sql_pipeline.stream_source(config).name == "kinesis.sql" and "aws.endpoint" not in statement


def test_unknown_properties_are_refused_by_name(tmp_path) -> None:
    groups = load_property_groups()
    groups["Job"]["dedup.tll"] = "1 h"
    with pytest.raises(ConfigError, match="unknown properties in group Job: dedup.tll"):
        JobConfig.from_properties(groups, tmp_path)
    with pytest.raises(ConfigError, match="unknown property group 'Sorce'"):
        JobConfig.from_properties({"Sorce": {}}, tmp_path)


def test_a_partial_properties_file_takes_the_rest_from_the_defaults(tmp_path) -> None:
    config = JobConfig.from_properties({"Job": {"dedup.ttl": "1 h"}}, tmp_path)
    assert config.dedup_ttl == "1 h" and config.watermark_delay_s == 60 and config.source_type == "spool"


def test_kinesis_needs_a_stream_arn(tmp_path) -> None:
    with pytest.raises(ConfigError, match="stream.arn"):
        JobConfig.from_properties(kinesis_groups(**{"stream.arn": ""}), tmp_path)
    with pytest.raises(ConfigError, match="not one of spool, kinesis"):
        JobConfig.from_properties({"Source": {"type": "kafka"}}, tmp_path)


@pytest.mark.slow
def test_without_the_connector_jar_the_error_says_what_to_add(tmp_path) -> None:
    config = JobConfig.from_properties(kinesis_groups(), tmp_path, featurestore_endpoint_url="http://127.0.0.1:9")
    with pytest.raises(ConnectorMissing, match="source type 'kinesis' is not on the job's classpath"):
        build_pipeline(config)
