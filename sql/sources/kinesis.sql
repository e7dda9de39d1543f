-- AWS source: the Kinesis stream the poller puts lines on (one record per transaction, partition key =
-- hash; one heartbeat record per poll), read with the `kinesis` connector of
-- flink-sql-connector-aws-kinesis-streams (the jar `chainfeat package` puts in lib/).
CREATE TEMPORARY TABLE source_lines (
    line STRING,
    ${event_time_columns}
) WITH (
    'connector' = 'kinesis',
    'stream.arn' = '${kinesis_stream_arn}',
    'aws.region' = '${aws_region}',
    'source.init.position' = '${kinesis_init_position}',
    'format' = 'raw',
    'raw.charset' = 'UTF-8'${kinesis_endpoint_option}
);
