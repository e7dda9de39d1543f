-- Per address and minute, what the address received: the outputs paying it (unique_outputs, one row per output of
-- every transaction). The record identifier is the address, so online keeps each address's newest minute; outputs
-- without an address (non-standard scripts) are left out. `value` is a reserved word: quote it.
CREATE TEMPORARY VIEW address_minute AS
SELECT
    address,
    CAST(UNIX_TIMESTAMP(DATE_FORMAT(window_end, 'yyyy-MM-dd HH:mm:ss')) AS DOUBLE) AS event_time,
    COUNT(*) AS nb_outputs_1min,
    COUNT(DISTINCT `hash`) AS nb_trx_1min,
    SUM(`value`) AS total_received_1min
FROM TABLE(TUMBLE(TABLE unique_outputs, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
WHERE address IS NOT NULL
GROUP BY window_start, window_end, address;
