-- The job's read progress on the local feed: one row per publication heartbeat (the last line of each feed
-- file). A file becomes visible only when the checkpoint that covers it completes (Flink's file sink hides
-- in-progress files), so what is visible was read and checkpointed: the feed publisher waits for it before
-- it publishes the next file (connectors/spool.py). Files roll within ${progress_roll} (a json file sink rolls
-- by time, not on checkpoints) so that the next checkpoint can commit them.
CREATE TEMPORARY TABLE progress_sink (
    publication BIGINT,
    polled_at DOUBLE
) WITH (
    'connector' = 'filesystem',
    'path' = '${progress_uri}',
    'format' = 'json',
    'sink.rolling-policy.rollover-interval' = '${progress_roll}',
    'sink.rolling-policy.check-interval' = '${progress_roll}'
);

INSERT INTO progress_sink
SELECT publication, polled_at
FROM parsed_lines
WHERE publication IS NOT NULL;
