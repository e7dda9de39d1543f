-- Each transaction's inputs and outputs, for per-address features: one row per input (unique_inputs) or output
-- (unique_outputs) of every transaction in unique_transactions, each with the transaction's hash, the entry's place
-- in its list, its address and value, and the transaction's time, polled_at and ts, still the event-time attribute:
-- a feature file windows them as it windows unique_transactions, e.g.
--     TUMBLE(TABLE unique_outputs, DESCRIPTOR(ts), INTERVAL '1' MINUTE) ... GROUP BY window_start, window_end, address
-- is a window aggregate (append-only, one row per window and address), in the streaming job and the backfill alike.
-- unique_transaction_lists holds the lists themselves, a row per transaction, for CROSS JOIN UNNEST.
--
-- They come from the lines apart from unique_transactions (parse.sql's transaction_lists, lateness.sql's
-- on_time_transaction_lists, deduplicated here as dedup.sql does it, the earliest poll's sighting first): with two or more feature groups Flink shares
-- unique_transactions whole between them, so lists there would be decoded, copied and carried through the dedup's
-- exchange and state by every job, used or not. Unused, none of these views is in the job's plan.
CREATE TEMPORARY VIEW unique_transaction_lists AS
SELECT `hash`, `time`, polled_at, inputs, outputs, ts
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, `hash` ORDER BY ts ASC, polled_at ASC) AS row_num
    FROM TABLE(TUMBLE(TABLE on_time_transaction_lists, DESCRIPTOR(ts), INTERVAL '1' SECOND))
)
WHERE row_num = 1;

-- Each view projects its one list before UNNEST: Flink does not prune the columns of the left side of a CROSS JOIN
-- UNNEST, and the other list would cross the dedup's exchange for nothing. `position` is the entry's index in the
-- API's list (0 first), so (hash, position) names an output.
CREATE TEMPORARY VIEW unique_inputs AS
SELECT t.`hash`, i.n - 1 AS `position`, i.address, i.`value`, t.`time`, t.polled_at, t.ts
FROM (SELECT `hash`, `time`, polled_at, inputs, ts FROM unique_transaction_lists) AS t
CROSS JOIN UNNEST(t.inputs) WITH ORDINALITY AS i (address, `value`, n);

CREATE TEMPORARY VIEW unique_outputs AS
SELECT t.`hash`, o.n - 1 AS `position`, o.address, o.`value`, t.`time`, t.polled_at, t.ts
FROM (SELECT `hash`, `time`, polled_at, outputs, ts FROM unique_transaction_lists) AS t
CROSS JOIN UNNEST(t.outputs) WITH ORDINALITY AS o (address, `value`, n);
