-- Validate every line of the transaction stream (the reason is rejection_reason.sql's): a line the poller could not
-- make a transaction of, or a transaction whose values the job refuses, gets a reason and goes to the dead letter;
-- heartbeats only carry the watermark forward. Every column but the inputs and outputs (transaction_lists below).
CREATE TEMPORARY VIEW parsed_lines AS
SELECT
    `hash`, ver, vin_sz, vout_sz, size, weight, fee, relayed_by, lock_time, tx_index, double_spend, `time`,
    block_index, block_height, rbf, input_count, output_count, polled_at, heartbeat, publication, rejected, rejection,
    ts, proc_time,
${rejection_reason} AS reason
FROM source_lines;

-- The typed transaction stream: every field the API returns, under its own name and type, plus
-- input_count/output_count (the lengths of inputs/out), polled_at (unix seconds) and ts (the event time).
CREATE TEMPORARY VIEW transactions AS
SELECT `hash`, ver, vin_sz, vout_sz, size, weight, fee, relayed_by, lock_time, tx_index, double_spend, `time`,
       block_index, block_height, rbf, input_count, output_count, polled_at, ts, proc_time
FROM parsed_lines
WHERE reason IS NULL AND heartbeat IS NULL;

-- The same transactions' inputs and outputs (each entry's address and value), read from the lines apart from
-- parsed_lines: every view and output of the job shares parsed_lines whole, so lists there would be decoded and
-- copied along for every line of every job; here only a job whose features use them (sql/inputs_outputs.sql) reads
-- them. The same test of the same line (rejection_reason.sql) keeps exactly the transactions above.
CREATE TEMPORARY VIEW transaction_lists AS
SELECT `hash`, `time`, polled_at, inputs, outputs, ts
FROM source_lines
WHERE heartbeat IS NULL AND
${rejection_reason} IS NULL;
