-- The streaming sources' columns (filled into spool.sql, spool_bounded.sql, kinesis*.sql): every transaction field
-- (transaction_fields.sql), the processing time, and the watermark = event time - ${watermark_delay_s} s.
${transaction_fields},
    proc_time AS PROCTIME(),
    WATERMARK FOR ts AS ts - INTERVAL '${watermark_delay_s}' SECOND
