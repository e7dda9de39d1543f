-- count_dead_letter / count_late pass their argument through and count the row (udfs/metrics.py).
INSERT INTO dead_letter_sink
SELECT line, count_dead_letter(reason) AS reason, proc_time FROM parsed_lines WHERE reason IS NOT NULL;

INSERT INTO late_sink
SELECT count_late(tx_hash) AS tx_hash, fee, ts, watermark_at FROM late_transactions;
