-- The Kinesis source at another endpoint (Source endpoint: a Kinesis-compatible server in tests).
-- Otherwise as kinesis.sql.
CREATE TEMPORARY TABLE source_lines (
${transaction_lines}
) WITH (
    'connector' = 'kinesis',
    'stream.arn' = '${kinesis_stream_arn}',
    'aws.region' = '${aws_region}',
    'source.init.position' = '${kinesis_init_position}',
    'source.reader.empty-records-fetch-interval' = '1 s',
    'format' = 'json',
    'json.fail-on-missing-field' = 'false',
    'json.ignore-parse-errors' = 'false',
    'aws.endpoint' = '${kinesis_endpoint_url}'
);
