-- Local side outputs: JSON-lines files under the data dir, made visible when a checkpoint completes.
CREATE TEMPORARY TABLE dead_letter_sink (
    line STRING,
    reason STRING,
    detected_at TIMESTAMP_LTZ(3)
) WITH (
    'connector' = 'filesystem',
    'path' = '${dead_letter_uri}',
    'format' = 'json',
    'sink.rolling-policy.rollover-interval' = '1 min'
);

CREATE TEMPORARY TABLE late_sink (
${transaction_columns},
    ts TIMESTAMP_LTZ(3),
    watermark_at TIMESTAMP_LTZ(3)
) WITH (
    'connector' = 'filesystem',
    'path' = '${late_uri}',
    'format' = 'json',
    'sink.rolling-policy.rollover-interval' = '1 min'
);
