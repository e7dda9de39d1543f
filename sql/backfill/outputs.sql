-- What a backfill reports (job/local/backfill.py reads both after the job): every window it computed, per feature
-- group, and whether it was complete (written) or partial (skipped; job/flow/backfill.py adds one INSERT per group);
-- and its counts and the archive's coverage. Two aggregations make the counts: the lines' (coverage.sql) and the
-- sightings' (transaction_sightings numbers every on-time transaction, its first sighting 1).
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

CREATE TEMPORARY VIEW sighting_counts AS
SELECT COUNT(*) AS sightings, COUNT(*) FILTER (WHERE sighting = 1) AS firsts
FROM transaction_sightings;

INSERT INTO backfill_facts
SELECT fact.name, fact.amount
FROM archive_coverage
CROSS JOIN sighting_counts
CROSS JOIN UNNEST(ARRAY[
    ROW(CAST('lines' AS STRING), CAST(lines AS DOUBLE)),
    ROW(CAST('transactions' AS STRING), CAST(sightings AS DOUBLE)),
    ROW(CAST('unique_transactions' AS STRING), CAST(firsts AS DOUBLE)),
    ROW(CAST('dead_letter' AS STRING), CAST(dead_letter_lines AS DOUBLE)),
    ROW(CAST('covered_from_s' AS STRING), covered_from_s),
    ROW(CAST('covered_to_s' AS STRING), covered_to_s)
]) AS fact (name, amount);
