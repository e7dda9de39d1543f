-- Per minute, the addresses that spent (the inputs of the minute's transactions, unique_inputs), each once, sorted:
-- an ARRAY<STRING> column is a List of String feature (a collection type), so this group's online store is InMemory,
-- the only storage type with collections. Inputs without an address (non-standard scripts) are left out.
CREATE TEMPORARY VIEW input_addresses_minute AS
SELECT
    DATE_FORMAT(window_start, 'yyyy-MM-dd HH:mm:ss') AS tx_minute,
    CAST(UNIX_TIMESTAMP(DATE_FORMAT(window_end, 'yyyy-MM-dd HH:mm:ss')) AS DOUBLE) AS event_time,
    ARRAY_SORT(ARRAY_AGG(DISTINCT address)) AS input_addresses,
    COUNT(*) AS nb_inputs_1min
FROM TABLE(TUMBLE(TABLE unique_inputs, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
WHERE address IS NOT NULL
GROUP BY window_start, window_end;
