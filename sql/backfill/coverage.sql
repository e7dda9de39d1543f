-- What the archive covers completely, in unix seconds (the rule udfs/coverage.py states, the streaming job's too):
-- from its first poll (or --from, if later) to its last poll minus the watermark delay (or --to, if earlier). A
-- window is written only if it lies inside (job/flow/backfill.py): one the archive covers only in part, at either
-- edge, would overwrite a complete one. With it, for the backfill's report (outputs.sql), the lines read and those
-- sent to the dead letter: one aggregation of the lines for all four.
-- It reads parsed_lines (every line, as source_lines), not source_lines: a view two parts of the job read is planned
-- once with all its columns, so a second reader of source_lines would make Flink decode every line's inputs and
-- outputs lists too (the json format skips them only when source_lines has the one reader; measured: bench/HISTORY.md).
CREATE TEMPORARY VIEW archive_coverage AS
SELECT
    GREATEST(CAST(${range_from_ms} AS DOUBLE) / 1000, MIN(CASE WHEN heartbeat THEN polled_at END)) AS covered_from_s,
    LEAST(CAST(${range_to_ms} AS DOUBLE) / 1000,
          MAX(CASE WHEN heartbeat THEN polled_at END) - ${watermark_delay_s}) AS covered_to_s,
    COUNT(*) AS lines,
    COUNT(*) FILTER (WHERE reason IS NOT NULL) AS dead_letter_lines
FROM parsed_lines;
