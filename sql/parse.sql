-- Parse + validate every source line. A line that is not JSON, lacks hash/time/fee, has a fee that is
-- not a non-negative integer, or a time the source rejected (ts = epoch 0) gets a reason and goes to the
-- dead letter; heartbeats only carry the watermark forward.
CREATE TEMPORARY VIEW parsed_lines AS
SELECT
    line,
    ts,
    proc_time,
    JSON_VALUE(line, '$.hash') AS tx_hash,
    TRY_CAST(JSON_VALUE(line, '$.fee') AS BIGINT) AS fee,
    JSON_VALUE(line, '$.heartbeat') IS NOT DISTINCT FROM 'true' AS is_heartbeat,
    CASE
        WHEN line IS NOT JSON OBJECT THEN 'not a JSON object'
        WHEN JSON_VALUE(line, '$.heartbeat') = 'true' THEN CAST(NULL AS STRING)
        WHEN JSON_VALUE(line, '$.hash') IS NULL OR JSON_VALUE(line, '$.hash') = '' THEN 'missing hash'
        WHEN JSON_VALUE(line, '$.time') IS NULL THEN 'missing time'
        WHEN JSON_VALUE(line, '$.fee') IS NULL THEN 'missing fee'
        -- A regex, not TRY_CAST alone: Flink casts '1.5' to 1.
        WHEN NOT REGEXP(JSON_VALUE(line, '$.fee'), '^-?[0-9]{1,18}$') THEN 'fee is not an integer'
        WHEN TRY_CAST(JSON_VALUE(line, '$.fee') AS BIGINT) < 0 THEN 'negative fee'
        WHEN ts = TO_TIMESTAMP_LTZ(0, 3) THEN 'time is not a unix time up to ${future_tolerance_s} s after the poll'
    END AS reason
FROM source_lines;

CREATE TEMPORARY VIEW transactions AS
SELECT tx_hash, fee, ts, proc_time
FROM parsed_lines
WHERE reason IS NULL AND NOT is_heartbeat;
