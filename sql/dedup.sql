-- Drop re-polled transactions: keep the first sighting of each hash (Flink's keyed-state window
-- deduplication). Every sighting of a transaction carries the same `time`, so all re-polls of a hash fall
-- into the same one-second window: the state for a second is dropped as soon as the watermark passes it,
-- so it stays as small as a minute of transactions however long the job runs or however fast it replays.
-- unique_transactions is the view every feature file selects from: all columns of `transactions`, with ts
-- still the event-time attribute.
CREATE TEMPORARY VIEW unique_transactions AS
SELECT `hash`, ver, vin_sz, vout_sz, size, weight, fee, relayed_by, lock_time, tx_index, double_spend, `time`,
       block_index, block_height, rbf, input_count, output_count, polled_at, ts
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, `hash` ORDER BY ts ASC) AS row_num
    FROM TABLE(TUMBLE(TABLE on_time_transactions, DESCRIPTOR(ts), INTERVAL '1' SECOND))
)
WHERE row_num = 1;
