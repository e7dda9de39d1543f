-- Parse + validate every line of the transaction stream, once. A line the poller could not split into a
-- transaction (`rejected`: not JSON, not an object, inputs/out not a list), or a transaction without hash/time/fee, with a fee
-- that is not a non-negative integer, a time the source rejected (ts = epoch 0), or a field that is not of
-- its type, gets a reason and goes to the dead letter; heartbeats only carry the watermark forward.
-- Integers must be written as integers: casting back must give the same text ('1.5' is not the integer 1).
CREATE TEMPORARY VIEW parsed_lines AS
SELECT
    *,
    CASE
        WHEN rejected IS NOT NULL THEN COALESCE(rejection, 'rejected by the poller')
        WHEN heartbeat IS NOT NULL THEN CAST(NULL AS STRING)
        WHEN `hash` IS NULL OR `hash` = '' THEN 'missing hash'
        WHEN `time` IS NULL THEN 'missing time'
        WHEN fee IS NULL THEN 'missing fee'
        WHEN CAST(TRY_CAST(fee AS BIGINT) AS STRING) IS DISTINCT FROM fee THEN 'fee is not an integer'
        WHEN TRY_CAST(fee AS BIGINT) < 0 THEN 'negative fee'
        WHEN ts = TO_TIMESTAMP_LTZ(0, 3) THEN 'time is not a unix time up to ${future_tolerance_s} s after the poll'
        WHEN ver IS NOT NULL AND CAST(TRY_CAST(ver AS INT) AS STRING) IS DISTINCT FROM ver THEN 'ver is not an integer'
        WHEN vin_sz IS NOT NULL AND CAST(TRY_CAST(vin_sz AS INT) AS STRING) IS DISTINCT FROM vin_sz THEN 'vin_sz is not an integer'
        WHEN vout_sz IS NOT NULL AND CAST(TRY_CAST(vout_sz AS INT) AS STRING) IS DISTINCT FROM vout_sz THEN 'vout_sz is not an integer'
        WHEN size IS NOT NULL AND CAST(TRY_CAST(size AS INT) AS STRING) IS DISTINCT FROM size THEN 'size is not an integer'
        WHEN weight IS NOT NULL AND CAST(TRY_CAST(weight AS INT) AS STRING) IS DISTINCT FROM weight THEN 'weight is not an integer'
        WHEN lock_time IS NOT NULL AND CAST(TRY_CAST(lock_time AS BIGINT) AS STRING) IS DISTINCT FROM lock_time THEN 'lock_time is not an integer'
        WHEN tx_index IS NOT NULL AND CAST(TRY_CAST(tx_index AS BIGINT) AS STRING) IS DISTINCT FROM tx_index THEN 'tx_index is not an integer'
        WHEN block_index IS NOT NULL AND CAST(TRY_CAST(block_index AS BIGINT) AS STRING) IS DISTINCT FROM block_index THEN 'block_index is not an integer'
        WHEN block_height IS NOT NULL AND CAST(TRY_CAST(block_height AS BIGINT) AS STRING) IS DISTINCT FROM block_height THEN 'block_height is not an integer'
        WHEN input_count IS NOT NULL AND CAST(TRY_CAST(input_count AS INT) AS STRING) IS DISTINCT FROM input_count THEN 'input_count is not an integer'
        WHEN output_count IS NOT NULL AND CAST(TRY_CAST(output_count AS INT) AS STRING) IS DISTINCT FROM output_count THEN 'output_count is not an integer'
        WHEN double_spend IS NOT NULL AND double_spend NOT IN ('true', 'false') THEN 'double_spend is not a boolean'
        WHEN rbf IS NOT NULL AND rbf NOT IN ('true', 'false') THEN 'rbf is not a boolean'
        WHEN polled_at IS NOT NULL AND TRY_CAST(polled_at AS DOUBLE) IS NULL THEN 'polled_at is not a number'
    END AS reason
FROM source_lines;

-- The typed transaction stream: every field the API returns, under its own name and natural type, plus
-- input_count/output_count (the lengths of inputs/out), polled_at (unix seconds) and ts (the event time).
CREATE TEMPORARY VIEW transactions AS
SELECT
    `hash`,
    TRY_CAST(ver AS INT) AS ver,
    TRY_CAST(vin_sz AS INT) AS vin_sz,
    TRY_CAST(vout_sz AS INT) AS vout_sz,
    TRY_CAST(size AS INT) AS size,
    TRY_CAST(weight AS INT) AS weight,
    TRY_CAST(fee AS BIGINT) AS fee,
    relayed_by,
    TRY_CAST(lock_time AS BIGINT) AS lock_time,
    TRY_CAST(tx_index AS BIGINT) AS tx_index,
    TRY_CAST(double_spend AS BOOLEAN) AS double_spend,
    TRY_CAST(`time` AS BIGINT) AS `time`,
    TRY_CAST(block_index AS BIGINT) AS block_index,
    TRY_CAST(block_height AS BIGINT) AS block_height,
    TRY_CAST(rbf AS BOOLEAN) AS rbf,
    TRY_CAST(input_count AS INT) AS input_count,
    TRY_CAST(output_count AS INT) AS output_count,
    TRY_CAST(polled_at AS DOUBLE) AS polled_at,
    ts,
    proc_time
FROM parsed_lines
WHERE reason IS NULL AND heartbeat IS NULL;
