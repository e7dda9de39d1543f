-- The windows the job computed on the local feed: one row per feature row of every feature group (its record
-- identifier as a string and its event time; job/flow/pipeline.py adds one INSERT per group). Like the progress
-- sink, a file is visible only once the checkpoint that covers it completes, so after a drained bounded run it
-- holds every window exactly once: the run checks that the feature store has each of them before it exits 0.
CREATE TEMPORARY TABLE computed_windows (
    feature_group STRING,
    record_identifier STRING,
    event_time DOUBLE
) WITH (
    'connector' = 'filesystem',
    'path' = '${computed_uri}',
    'format' = 'json',
    'sink.rolling-policy.rollover-interval' = '1 s',
    'sink.rolling-policy.check-interval' = '1 s'
);
