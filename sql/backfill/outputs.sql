-- What a backfill reports (job/local/backfill.py reads both after the job): every window it computed, per feature
-- group, and whether it was complete (written) or partial (skipped; job/flow/backfill.py adds one INSERT per group);
-- and its counts and the archive's coverage. Lines are counted from parsed_lines (the same rows): see coverage.sql.
CREATE TEMPORARY TABLE backfill_windows (
    feature_group STRING,
    record_identifier STRING,
    event_time DOUBLE,
    complete BOOLEAN,
    `window` STRING  -- the window's shape (WindowShape.describe: TUMBLE 1 min, HOP 5 min every 1 min, ...)
) WITH (
    'connector' = 'filesystem',
    'path' = '${backfill_windows_uri}',
    'format' = 'json'
);

CREATE TEMPORARY TABLE backfill_facts (
    name STRING,
    amount DOUBLE
) WITH (
    'connector' = 'filesystem',
    'path' = '${backfill_facts_uri}',
    'format' = 'json'
);

INSERT INTO backfill_facts
SELECT 'lines', CAST(COUNT(*) AS DOUBLE) FROM parsed_lines
UNION ALL SELECT 'transactions', CAST(COUNT(*) AS DOUBLE) FROM on_time_transactions
UNION ALL SELECT 'unique_transactions', CAST(COUNT(*) AS DOUBLE) FROM unique_transactions
UNION ALL SELECT 'dead_letter', CAST(COUNT(*) AS DOUBLE) FROM parsed_lines WHERE reason IS NOT NULL
UNION ALL SELECT 'covered_from_s', covered_from_s FROM archive_coverage
UNION ALL SELECT 'covered_to_s', covered_to_s FROM archive_coverage;
