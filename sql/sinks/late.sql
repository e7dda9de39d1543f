-- The streaming job's late output (transactions behind the watermark, each hash once: lateness.sql);
-- count_late passes its argument through and counts the row (udfs/metrics.py).
INSERT INTO late_sink
SELECT count_late(`hash`) AS `hash`, ver, vin_sz, vout_sz, size, weight, fee, relayed_by, lock_time, tx_index,
       double_spend, `time`, block_index, block_height, rbf, input_count, output_count, polled_at, ts, watermark_at
FROM late_transactions;
