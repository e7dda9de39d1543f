-- count_dead_letter passes its argument through and counts the row (udfs/metrics.py); the streaming job and
-- the backfill (chainfeat backfill) write their dead letter with this file.
-- A transaction the job rejects is written back as the line it read (the poller's own rejections keep
-- their raw text).
INSERT INTO dead_letter_sink
SELECT
    COALESCE(rejected, JSON_OBJECT(
        KEY 'hash' VALUE `hash`, KEY 'ver' VALUE ver, KEY 'vin_sz' VALUE vin_sz, KEY 'vout_sz' VALUE vout_sz,
        KEY 'size' VALUE size, KEY 'weight' VALUE weight, KEY 'fee' VALUE fee, KEY 'relayed_by' VALUE relayed_by,
        KEY 'lock_time' VALUE lock_time, KEY 'tx_index' VALUE tx_index, KEY 'double_spend' VALUE double_spend,
        KEY 'time' VALUE `time`, KEY 'block_index' VALUE block_index, KEY 'block_height' VALUE block_height,
        KEY 'rbf' VALUE rbf, KEY 'input_count' VALUE input_count, KEY 'output_count' VALUE output_count,
        KEY 'polled_at' VALUE polled_at
        ABSENT ON NULL)) AS line,
    count_dead_letter(reason) AS reason,
    proc_time
FROM parsed_lines
WHERE reason IS NOT NULL;
