-- Why a line of the transaction stream is not a transaction the job takes, or NULL for a valid transaction and for a
-- heartbeat (filled into parse.sql as an expression): a line the poller could not make a transaction of (`rejected`:
-- not JSON, not an object, a field of another type, inputs/out not a list or an entry of another shape), or a
-- transaction without hash/time/fee, with a negative fee, a time the source rejected (ts = epoch 0) or a hash that is
-- not a transaction id (64 lowercase hex characters).
    CASE
        WHEN rejected IS NOT NULL THEN COALESCE(rejection, 'rejected by the poller')
        WHEN heartbeat THEN CAST(NULL AS STRING)
        WHEN `hash` IS NULL OR `hash` = '' THEN 'missing hash'
        WHEN `time` IS NULL THEN 'missing time'
        WHEN fee IS NULL THEN 'missing fee'
        WHEN fee < 0 THEN 'negative fee'
        WHEN ts = TO_TIMESTAMP_LTZ(0, 3) AND `time` > 0 AND `time` < polled_at - ${past_tolerance_s}
            THEN 'time is more than ${past_tolerance_s} s before the poll (older than any unconfirmed transaction)'
        WHEN ts = TO_TIMESTAMP_LTZ(0, 3) THEN 'time is not a unix time up to ${future_tolerance_s} s after the poll'
        -- the test of REGEXP(`hash`, '^[0-9a-f]{64}$') at a fraction of its cost (~1 s of a 20 s run of 1 M transactions)
        WHEN CHAR_LENGTH(`hash`) <> 64 OR UNHEX(`hash`) IS NULL OR LOWER(`hash`) <> `hash`
            THEN 'hash is not 64 lowercase hex characters'
    END
