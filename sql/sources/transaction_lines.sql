-- Columns every source table shares (filled into each sources/*.sql where it says so): one JSON object per
-- line, as connectors/blockchain/transactions.py writes the stream. Every field is read as the text of its
-- JSON value, so no line can fail the source; sql/parse.sql validates them and gives them their types.
-- ts is the event time: the transaction's `time` (unix seconds), or 0 when it is missing, not an integer,
-- or further in the future than ${future_tolerance_s} s after the poll: such lines go to the dead letter
-- (see parse.sql) and must not move the watermark. Heartbeat lines carry the poll time as `time`.
    `hash` STRING,
    ver STRING,
    vin_sz STRING,
    vout_sz STRING,
    size STRING,
    weight STRING,
    fee STRING,
    relayed_by STRING,
    lock_time STRING,
    tx_index STRING,
    double_spend STRING,
    `time` STRING,
    block_index STRING,
    block_height STRING,
    rbf STRING,
    input_count STRING,
    output_count STRING,
    polled_at STRING,
    heartbeat STRING,
    publication STRING,
    rejected STRING,
    rejection STRING,
    ts AS TO_TIMESTAMP_LTZ(
        CASE
            WHEN CAST(TRY_CAST(`time` AS BIGINT) AS STRING) = `time`
             AND TRY_CAST(`time` AS BIGINT) > 0
             AND TRY_CAST(`time` AS BIGINT) <= COALESCE(TRY_CAST(polled_at AS DOUBLE), 1e18) + ${future_tolerance_s}
            THEN TRY_CAST(`time` AS BIGINT)
            ELSE 0
        END * 1000, 3),
    proc_time AS PROCTIME(),
    WATERMARK FOR ts AS ts - INTERVAL '${watermark_delay_s}' SECOND
