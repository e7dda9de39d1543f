-- Local source: the feed directory, JSON-lines files published in poll order from the spool
-- (connectors/spool.py): the transaction stream's lines (see transaction_lines.sql), watched for new files.
CREATE TEMPORARY TABLE source_lines (
${transaction_lines}
) WITH (
    'connector' = 'filesystem',
    'path' = '${feed_uri}',
    'format' = 'json',
    'json.fail-on-missing-field' = 'false',
    'json.ignore-parse-errors' = 'false',
    'source.monitor-interval' = '${monitor_interval}'
);
