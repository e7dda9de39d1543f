-- A `transactions` table for testing the SQL steps after parsing alone (tests/support/sql_step.py): the typed
-- transaction stream's columns read from JSON lines (bounded), with the job's event time and watermark.
CREATE TEMPORARY TABLE transactions (
${transaction_columns},
    ts AS TO_TIMESTAMP_LTZ(`time` * 1000, 3),
    proc_time AS PROCTIME(),
    WATERMARK FOR ts AS ts - INTERVAL '${watermark_delay_s}' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = '${rows_uri}',
    'format' = 'json'
);
