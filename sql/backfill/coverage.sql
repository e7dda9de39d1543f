-- What the archive covers completely, in unix seconds: from its first poll (or --from, if later) to where the
-- streaming job's watermark would stand after its last line — the highest event time read, heartbeats included,
-- minus the watermark delay — (or --to, if earlier). A line's event time ts is its `time` where that is valid, else 0
-- (sources/transaction_fields.sql). A window is written only if it lies inside (job/flow/backfill.py):
-- one the archive covers only in part, at either edge, would overwrite a complete one.
CREATE TEMPORARY VIEW archive_coverage AS
SELECT
    GREATEST(CAST(${range_from_ms} AS DOUBLE) / 1000, MIN(CASE WHEN heartbeat THEN polled_at END)) AS covered_from_s,
    LEAST(CAST(${range_to_ms} AS DOUBLE) / 1000,
          CAST(MAX(CASE WHEN ts > TO_TIMESTAMP_LTZ(0, 3) THEN `time` END) - ${watermark_delay_s} AS DOUBLE)) AS covered_to_s
FROM source_lines;
