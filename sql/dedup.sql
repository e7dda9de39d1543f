-- Drop re-polled transactions: keep the first sighting of each hash. Every sighting of a transaction carries the
-- same `time`, so all re-polls of a hash fall into the same one-second window: the state for a second is dropped as
-- soon as the watermark passes it, so it stays as small as a minute of transactions however long the job runs or
-- however fast it replays.
-- transaction_sightings numbers each hash's sightings within its second (Flink's window Top-N, keyed state; it emits
-- a second's sightings when the watermark passes it): the first is the transaction, the later ones are duplicates.
-- Numbering them all, where a window deduplication would keep the first only, lets the streaming job count the
-- duplicates where it drops them (sinks/duplicates.sql). Flink plans a window Top-N only under a bound on the rank:
-- the largest INT keeps every sighting. All sightings of a hash share ts: polled_at makes the first sighting the
-- earliest poll's in the backfill too, whose batch sort breaks ties in no particular order (the stream reads polls in
-- order, so there it changes nothing).
CREATE TEMPORARY VIEW transaction_sightings AS
SELECT *
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, `hash` ORDER BY ts ASC, polled_at ASC) AS sighting
    FROM TABLE(TUMBLE(TABLE on_time_transactions, DESCRIPTOR(ts), INTERVAL '1' SECOND))
)
WHERE sighting <= 2147483647;

-- unique_transactions is the view every feature file selects from: all columns of `transactions`, with ts
-- still the event-time attribute.
CREATE TEMPORARY VIEW unique_transactions AS
SELECT `hash`, ver, vin_sz, vout_sz, size, weight, fee, relayed_by, lock_time, tx_index, double_spend, `time`,
       block_index, block_height, rbf, input_count, output_count, polled_at, ts
FROM transaction_sightings
WHERE sighting = 1;
