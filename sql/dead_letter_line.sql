-- A dead-letter row's line (filled into sinks/dead_letter.sql and backfill/dead_letter.sql as an expression over
-- parsed_lines): a transaction the job rejects is written back as the line it read; the poller's own rejections keep
-- their raw text.
        COALESCE(rejected, JSON_OBJECT(
            KEY 'hash' VALUE `hash`, KEY 'ver' VALUE ver, KEY 'vin_sz' VALUE vin_sz, KEY 'vout_sz' VALUE vout_sz,
            KEY 'size' VALUE size, KEY 'weight' VALUE weight, KEY 'fee' VALUE fee, KEY 'relayed_by' VALUE relayed_by,
            KEY 'lock_time' VALUE lock_time, KEY 'tx_index' VALUE tx_index, KEY 'double_spend' VALUE double_spend,
            KEY 'time' VALUE `time`, KEY 'block_index' VALUE block_index, KEY 'block_height' VALUE block_height,
            KEY 'rbf' VALUE rbf, KEY 'input_count' VALUE input_count, KEY 'output_count' VALUE output_count,
            KEY 'polled_at' VALUE polled_at
            ABSENT ON NULL))
