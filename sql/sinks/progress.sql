-- What the local run reads back from the job, made visible only when the checkpoint that covers it
-- completes (Flink's file sink hides in-progress files), so what is visible is read and checkpointed and
-- survives any restart exactly once. Files roll within a second so that the next checkpoint commits them.
--   progress_sink: one row per publication heartbeat (the last line of each feed file): the feed publisher
--     waits for it before it publishes the next file (connectors/spool.py);
--   dedup_stats_sink: per minute of event time, on-time sightings and unique transactions: their difference
--     is the re-polled transactions the job dropped.
CREATE TEMPORARY TABLE progress_sink (
    publication BIGINT,
    polled_at DOUBLE
) WITH (
    'connector' = 'filesystem',
    'path' = '${progress_uri}',
    'format' = 'json',
    'sink.rolling-policy.rollover-interval' = '1 s',
    'sink.rolling-policy.check-interval' = '1 s'
);

CREATE TEMPORARY TABLE dedup_stats_sink (
    `minute` STRING,
    sightings BIGINT,
    unique_transactions BIGINT
) WITH (
    'connector' = 'filesystem',
    'path' = '${dedup_stats_uri}',
    'format' = 'json',
    'sink.rolling-policy.rollover-interval' = '1 s',
    'sink.rolling-policy.check-interval' = '1 s'
);

CREATE TEMPORARY VIEW dedup_counts AS
SELECT ts, 1 AS sightings, 0 AS unique_transactions FROM on_time_transactions
UNION ALL
SELECT ts, 0 AS sightings, 1 AS unique_transactions FROM unique_transactions;

INSERT INTO progress_sink
SELECT publication, polled_at
FROM parsed_lines
WHERE publication IS NOT NULL;

INSERT INTO dedup_stats_sink
SELECT DATE_FORMAT(window_start, 'yyyy-MM-dd HH:mm:ss'), SUM(sightings), SUM(unique_transactions)
FROM TABLE(TUMBLE(TABLE dedup_counts, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end;
