-- Per relaying node and minute: the record identifier is the node, so online keeps its newest minute.
CREATE TEMPORARY VIEW relay_minute AS
SELECT
    relayed_by,
    CAST(UNIX_TIMESTAMP(DATE_FORMAT(window_end, 'yyyy-MM-dd HH:mm:ss')) AS DOUBLE) AS event_time,
    COUNT(*) AS nb_trx_1min,
    MAX(fee) AS max_fee_1min,
    SUM(CASE WHEN rbf THEN 1 ELSE 0 END) AS nb_rbf_1min
FROM TABLE(TUMBLE(TABLE unique_transactions, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, relayed_by;
