-- Drop re-polled transactions: keep the first line seen per hash (Flink's keyed-state Deduplicate
-- operator; append-only). State per hash expires after table.exec.state.ttl (configuration).
CREATE TEMPORARY VIEW unique_transactions AS
SELECT tx_hash, fee, ts
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY tx_hash ORDER BY proc_time ASC) AS row_num
    FROM transactions
)
WHERE row_num = 1;
