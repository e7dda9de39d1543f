-- AWS source: the Kinesis stream the poller puts the transaction stream on, read with the `kinesis` connector
-- of flink-connector-aws 6.0 (flink-sql-connector-aws-kinesis-streams, the jar `chainfeat package` puts in
-- lib/). Each record is one poll: a JSON array of its lines (see transaction_lines.sql), which the json format
-- reads as one row per element. Every record has the same partition key, so the stream is one shard read in
-- the order it was written, poll after poll, as the local feed (connectors/kinesis/producer.py): this
-- connector applies the watermark per source subtask, not per shard, so lines spread over shards could turn
-- late when one shard is read ahead of another.
-- Shard reads: 5 GetRecords calls/s per shard, shared with Firehose (one a second); an empty read waits 1 s
-- before the next, not the connector's 250 ms, so the two never exceed them.
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
    'json.ignore-parse-errors' = 'false'
);
