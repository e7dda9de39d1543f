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
    `hash` STRING,
    ver INT,
    vin_sz INT,
    vout_sz INT,
    size INT,
    weight INT,
    fee BIGINT,
    relayed_by STRING,
    lock_time BIGINT,
    tx_index BIGINT,
    double_spend BOOLEAN,
    `time` BIGINT,
    block_index BIGINT,
    block_height BIGINT,
    rbf BOOLEAN,
    input_count INT,
    output_count INT,
    polled_at DOUBLE,
    ts TIMESTAMP_LTZ(3),
    watermark_at TIMESTAMP_LTZ(3)
) WITH (
    'connector' = 'filesystem',
    'path' = '${late_uri}',
    'format' = 'json',
    'sink.rolling-policy.rollover-interval' = '1 min'
);
