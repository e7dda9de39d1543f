-- Columns every source table shares (filled into each sources/*.sql where it says so): ts is the
-- event time, the transaction's `time` (unix seconds), or 0 when it is missing, not a number, or further
-- in the future than ${future_tolerance_s} s after the poll: such lines go to the dead letter (see parse.sql)
-- and must not move the watermark. Heartbeat lines carry the poll time as `time`.
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
