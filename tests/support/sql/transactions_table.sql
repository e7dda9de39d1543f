-- A `transactions` table for testing the SQL steps after parsing alone (tests/support/sql_step.py): the typed
-- transaction stream's columns read from JSON lines (bounded), with the job's event time and watermark; and, as
-- parse.sql has it beside the transactions, `transaction_lists`: their inputs and outputs.
CREATE TEMPORARY TABLE transactions (
${transaction_columns},
    inputs ARRAY<ROW<address STRING, `value` BIGINT>>,
    outputs ARRAY<ROW<address STRING, `value` BIGINT>>,
    ts AS TO_TIMESTAMP_LTZ(`time` * 1000, 3),
    proc_time AS PROCTIME(),
    WATERMARK FOR ts AS ts - INTERVAL '${watermark_delay_s}' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = '${rows_uri}',
    'format' = 'json'
);

CREATE TEMPORARY VIEW transaction_lists AS
SELECT `hash`, `time`, polled_at, inputs, outputs, ts
FROM transactions;
