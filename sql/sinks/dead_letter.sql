-- count_dead_letter passes its argument through and counts the row (udfs/metrics.py); the streaming job writes its
-- dead letter with this file (the backfill with backfill/dead_letter.sql: the same rows, no counter).
-- Each row: the line (dead_letter_line.sql), its reason, when it was read.
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
${dead_letter_line} AS line,
        reason,
        proc_time,
        COUNT(*) OVER (PARTITION BY reason ORDER BY proc_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS nth
    FROM parsed_lines
    WHERE reason IS NOT NULL
)
WHERE nth > 0;
