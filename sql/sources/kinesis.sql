-- AWS source: the Kinesis stream the poller puts the transaction stream's lines on (one record per line,
-- partition key = hash; see transaction_lines.sql), read with the `kinesis` connector of
-- flink-sql-connector-aws-kinesis-streams (the jar `chainfeat package` puts in lib/).
CREATE TEMPORARY TABLE source_lines (
${transaction_lines}
) WITH (
    'connector' = 'kinesis',
    'stream.arn' = '${kinesis_stream_arn}',
    'aws.region' = '${aws_region}',
    'source.init.position' = '${kinesis_init_position}',
    'format' = 'json',
    'json.fail-on-missing-field' = 'false',
    'json.ignore-parse-errors' = 'false'
);
