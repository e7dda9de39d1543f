INSERT INTO dead_letter_sink
SELECT line, reason, proc_time FROM parsed_lines WHERE reason IS NOT NULL;

INSERT INTO late_sink
SELECT tx_hash, fee, ts, watermark_at FROM late_transactions;
