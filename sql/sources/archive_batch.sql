-- Backfill source (chainfeat backfill, Flink batch mode): the raw archive, read whole and in any order. Locally the
-- data dir's spool (date=/hour=/poll-*.jsonl: a JSON line per transaction, then the poll's heartbeat); on AWS the
-- Firehose archive raw/date=/hour= in S3 (gzip objects, a JSON array of a poll's lines per line: Flink's json format
-- reads an array as one row per element and the filesystem connector decompresses *.gz). The columns are every
-- source's (transaction_fields.sql); what differs from the streaming sources' transaction_lines.sql: no watermark
-- (batch has none), and proc_time is the backfill's start (CURRENT_TIMESTAMP, evaluated once in batch; it dates the
-- dead letter) instead of PROCTIME(): Flink 2.3's batch planner fails on a PROCTIME() column as soon as two outputs
-- share the parsed lines ("Type mismatch: proc_time: TIMESTAMP_LTZ(3) *PROCTIME* NOT NULL" while reusing the plan),
-- and without that reuse each output would read and parse the archive again.
CREATE TEMPORARY TABLE source_lines (
${transaction_fields},
    proc_time AS CURRENT_TIMESTAMP
) WITH (
    'connector' = 'filesystem',
    'path' = '${archive_uri}',
    'format' = 'json',
    'json.fail-on-missing-field' = 'false',
    'json.ignore-parse-errors' = 'false'
);
