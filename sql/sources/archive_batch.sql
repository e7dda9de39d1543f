-- Backfill source (chainfeat backfill, Flink batch mode): the raw archive, read whole and in any order. Locally the
-- data dir's spool (date=/hour=/poll-*.jsonl: a JSON line per transaction, then the poll's heartbeat); on AWS the
-- Firehose archive raw/date=/hour= in S3 (gzip objects, a JSON array of a poll's lines per line: Flink's json format
-- reads an array as one row per element and the filesystem connector decompresses *.gz). The columns are every
-- source's (transaction_fields.sql); what differs from the streaming sources' transaction_lines.sql: no watermark
-- (batch has none), and proc_time is the backfill's start (CURRENT_TIMESTAMP, evaluated once in batch; it dates the
-- dead letter) instead of PROCTIME(): Flink 2.3's batch planner fails on a PROCTIME() column as soon as two outputs
-- share the parsed lines ("Type mismatch: proc_time: TIMESTAMP_LTZ(3) *PROCTIME* NOT NULL" while reusing the plan),
-- and without that reuse each output would read and parse the archive again.
-- The archive's directories are its partitions (`date`, `hour`: when the line was polled, UTC), so a --from/--to
-- range reads only the hours that can hold its transactions.
CREATE TEMPORARY TABLE archive_lines (
${transaction_fields},
    proc_time AS CURRENT_TIMESTAMP,
    `date` STRING,
    `hour` STRING
) PARTITIONED BY (`date`, `hour`) WITH (
    'connector' = 'filesystem',
    'path' = '${archive_uri}',
    'format' = 'json',
    'json.fail-on-missing-field' = 'false',
    'json.ignore-parse-errors' = 'false'
);

-- The hours a transaction with --from <= time < --to can have been polled in: a valid time lies at most
-- future_tolerance_s after its poll and past_tolerance_s before it (transaction_fields.sql), and Firehose dates an
-- object up to its buffering interval before its polls (connectors/archive_layout.py), so from the hour of
-- (--from - future_tolerance_s - that interval) to the hour of (--to + past_tolerance_s), 'YYYY-MM-DD HH'
-- (job/flow/backfill.py).
-- Flink prunes the other partitions before it lists their files.
CREATE TEMPORARY VIEW source_lines AS
SELECT *
FROM archive_lines
WHERE CONCAT(`date`, ' ', `hour`) >= '${first_hour}' AND CONCAT(`date`, ' ', `hour`) <= '${last_hour}';
