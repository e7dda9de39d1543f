-- Columns every source table shares (filled into each sources/*.sql through transaction_lines.sql, and into the
-- backfill's archive_batch.sql): one JSON object per line, typed, as connectors/blockchain/transactions.py writes
-- the stream (it checks each field's JSON type and turns what does not fit into `rejected` lines). Parsed once,
-- by Flink's json format.
-- inputs / outputs: each input's and output's address (null when the API has none) and value (satoshi), in the API's
-- order; `value` is a reserved word. Only parse.sql's transaction_lists reads them, so a job whose features do not
-- use them never decodes them: Flink pushes the projection into the json format, which then skips them.
-- ts is the event time: the transaction's `time` (unix seconds), or 0 when it is missing, further in the
-- future than ${future_tolerance_s} s after the poll, or more than ${past_tolerance_s} s before it (the
-- mempool drops unconfirmed transactions after 14 days): such lines go to the dead letter (see parse.sql)
-- and must not move the watermark. Heartbeat lines carry the poll time as `time`.
${transaction_columns},
    inputs ARRAY<ROW<address STRING, `value` BIGINT>>,
    outputs ARRAY<ROW<address STRING, `value` BIGINT>>,
    heartbeat BOOLEAN,
    publication BIGINT,
    rejected STRING,
    rejection STRING,
    ts AS TO_TIMESTAMP_LTZ(
        CASE
            WHEN `time` > 0 AND `time` <= COALESCE(polled_at, 1e18) + ${future_tolerance_s}
                 AND `time` >= COALESCE(polled_at, 0) - ${past_tolerance_s} THEN `time`
            ELSE 0
        END * 1000, 3)
