-- Split on the watermark: a transaction whose time is at or before the current watermark is late. Late
-- transactions go to the late output (never silently dropped), each hash once; the rest feed dedup.sql.
CREATE TEMPORARY VIEW on_time_transactions AS
SELECT *
FROM transactions
WHERE CURRENT_WATERMARK(ts) IS NULL OR ts > CURRENT_WATERMARK(ts);

CREATE TEMPORARY VIEW late_transactions AS
SELECT `hash`, ver, vin_sz, vout_sz, size, weight, fee, relayed_by, lock_time, tx_index, double_spend, `time`,
       block_index, block_height, rbf, input_count, output_count, polled_at, ts, watermark_at
FROM (
    SELECT *, CURRENT_WATERMARK(ts) AS watermark_at,
           ROW_NUMBER() OVER (PARTITION BY `hash` ORDER BY proc_time ASC) AS row_num
    FROM transactions
    WHERE ts <= CURRENT_WATERMARK(ts)
)
WHERE row_num = 1;

-- The same split for the transactions' inputs and outputs (parse.sql's transaction_lists, read from the same lines
-- under the same watermark): on time exactly when the transaction is (sql/inputs_outputs.sql reads this view).
CREATE TEMPORARY VIEW on_time_transaction_lists AS
SELECT *
FROM transaction_lists
WHERE CURRENT_WATERMARK(ts) IS NULL OR ts > CURRENT_WATERMARK(ts);
