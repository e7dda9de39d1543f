-- Local source: the feed directory, JSON-lines files published in poll order from the spool
-- (connectors/spool.py). One line per transaction (all API fields + polled_at) or per poll heartbeat
-- ({"heartbeat": true, "time": <poll time>, ...}).
CREATE TEMPORARY TABLE source_lines (
    line STRING,
    ${event_time_columns}
) WITH (
    'connector' = 'filesystem',
    'path' = '${feed_uri}',
    'format' = 'raw',
    'raw.charset' = 'UTF-8'${monitor_option}
);
