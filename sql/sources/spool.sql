-- Local source: the feed directory, JSON-lines files published in poll order from the spool
-- (connectors/spool.py). One line per transaction (all API fields + polled_at) or per poll heartbeat
-- ({"heartbeat": true, "time": <poll time>, ...}).
-- ts is the event time: the transaction's `time` (unix seconds), or 0 when it is missing, not a number,
-- or further in the future than ${future_tolerance_s} s after the poll: such lines go to the dead letter
-- (see parse.sql) and must not move the watermark.
CREATE TEMPORARY TABLE source_lines (
    line STRING,
    ts AS TO_TIMESTAMP_LTZ(
        CASE
            WHEN TRY_CAST(JSON_VALUE(line, '$.time') AS BIGINT) > 0
             AND TRY_CAST(JSON_VALUE(line, '$.time') AS BIGINT)
                 <= COALESCE(TRY_CAST(JSON_VALUE(line, '$.polled_at') AS DOUBLE), 1e18) + ${future_tolerance_s}
            THEN TRY_CAST(JSON_VALUE(line, '$.time') AS BIGINT)
            ELSE 0
        END * 1000, 3),
    proc_time AS PROCTIME(),
    WATERMARK FOR ts AS ts - INTERVAL '${watermark_delay_s}' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = '${feed_uri}',
    'format' = 'raw',
    'raw.charset' = 'UTF-8'${monitor_option}
);
