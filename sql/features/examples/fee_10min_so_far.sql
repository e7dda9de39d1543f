-- Fees so far in the current 10 minutes, every minute: a window start has several ends.
CREATE TEMPORARY VIEW fee_10min_so_far AS
SELECT
    DATE_FORMAT(window_end, 'yyyy-MM-dd HH:mm:ss') AS window_end_utc,
    CAST(UNIX_TIMESTAMP(DATE_FORMAT(window_end, 'yyyy-MM-dd HH:mm:ss')) AS DOUBLE) AS event_time,
    SUM(fee) AS total_fee_so_far
FROM TABLE(CUMULATE(TABLE unique_transactions, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '10' MINUTE))
GROUP BY window_start, window_end;
