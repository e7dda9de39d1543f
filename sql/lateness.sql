-- Split on the watermark: a transaction whose time is at or before the current watermark is late. Late
-- transactions go to the late output (never silently dropped); the rest feed the feature windows.
CREATE TEMPORARY VIEW on_time_transactions AS
SELECT tx_hash, fee, ts
FROM unique_transactions
WHERE CURRENT_WATERMARK(ts) IS NULL OR ts > CURRENT_WATERMARK(ts);

CREATE TEMPORARY VIEW late_transactions AS
SELECT tx_hash, fee, ts, CURRENT_WATERMARK(ts) AS watermark_at
FROM unique_transactions
WHERE ts <= CURRENT_WATERMARK(ts);
