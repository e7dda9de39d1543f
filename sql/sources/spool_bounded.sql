-- Local source, bounded (Source monitor.interval.s empty): the feed files there are when the job starts,
-- read once, then the job finishes. Otherwise as spool.sql.
CREATE TEMPORARY TABLE source_lines (
${transaction_lines}
) WITH (
    'connector' = 'filesystem',
    'path' = '${feed_uri}',
    'format' = 'json',
    'json.fail-on-missing-field' = 'false',
    'json.ignore-parse-errors' = 'false'
);
