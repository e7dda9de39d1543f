-- The backfill's stand-in for lateness.sql: in a batch over the archive nothing is behind a watermark
-- (CURRENT_WATERMARK and proc_time mean nothing there), so every valid transaction is on time; the backfill's
-- range (--from, --to) keeps the transactions with from <= time < to. dedup.sql reads this view, and
-- inputs_outputs.sql the same for the transactions' inputs and outputs.
CREATE TEMPORARY VIEW on_time_transactions AS
SELECT *
FROM transactions
WHERE ts >= TO_TIMESTAMP_LTZ(${range_from_ms}, 3) AND ts < TO_TIMESTAMP_LTZ(${range_to_ms}, 3);

CREATE TEMPORARY VIEW on_time_transaction_lists AS
SELECT *
FROM transaction_lists
WHERE ts >= TO_TIMESTAMP_LTZ(${range_from_ms}, 3) AND ts < TO_TIMESTAMP_LTZ(${range_to_ms}, 3);
