-- Average size and input count over the last 5 minutes, every minute.
CREATE TEMPORARY VIEW size_5min AS
SELECT
    DATE_FORMAT(window_start, 'yyyy-MM-dd HH:mm:ss') AS window_start_utc,
    CAST(UNIX_TIMESTAMP(DATE_FORMAT(window_end, 'yyyy-MM-dd HH:mm:ss')) AS DOUBLE) AS event_time,
    COUNT(*) AS nb_trx_5min,
    AVG(CAST(size AS DOUBLE)) AS avg_size_5min,
    SUM(input_count) AS total_inputs_5min
FROM TABLE(HOP(TABLE unique_transactions, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '5' MINUTE))
GROUP BY window_start, window_end;
