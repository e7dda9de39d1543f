-- count_dead_letter passes its argument through and counts the row (udfs/metrics.py); the streaming job and
-- the backfill (chainfeat backfill) write their dead letter with this file.
-- A transaction the job rejects is written back as the line it read (the poller's own rejections keep
-- their raw text).
-- Why the OVER: a Python function chained to the source would hold the source back until the Python worker is up
-- (4.4 s later on average in bench/end_to_end.py at 1 M, 2026-12-03). Flink chains operators unless an exchange
-- separates them, and SQL has no hint for that: the per-reason running count (an OVER aggregation, keyed by
-- reason) brings the keyed exchange, so the counter runs in a task of its own and the source reads from the start.
-- Its result is kept by the always-true `nth > 0` (the planner drops an OVER whose result is unused); the state
-- it holds is one count per reason.
INSERT INTO dead_letter_sink
SELECT line, count_dead_letter(reason) AS reason, proc_time
FROM (
    SELECT
        COALESCE(rejected, JSON_OBJECT(
            KEY 'hash' VALUE `hash`, KEY 'ver' VALUE ver, KEY 'vin_sz' VALUE vin_sz, KEY 'vout_sz' VALUE vout_sz,
            KEY 'size' VALUE size, KEY 'weight' VALUE weight, KEY 'fee' VALUE fee, KEY 'relayed_by' VALUE relayed_by,
            KEY 'lock_time' VALUE lock_time, KEY 'tx_index' VALUE tx_index, KEY 'double_spend' VALUE double_spend,
            KEY 'time' VALUE `time`, KEY 'block_index' VALUE block_index, KEY 'block_height' VALUE block_height,
            KEY 'rbf' VALUE rbf, KEY 'input_count' VALUE input_count, KEY 'output_count' VALUE output_count,
            KEY 'polled_at' VALUE polled_at
            ABSENT ON NULL)) AS line,
        reason,
        proc_time,
        COUNT(*) OVER (PARTITION BY reason ORDER BY proc_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS nth
    FROM parsed_lines
    WHERE reason IS NOT NULL
)
WHERE nth > 0;
