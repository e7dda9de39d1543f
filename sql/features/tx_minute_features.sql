-- Per-minute transaction features: the file to edit to change the features.
-- Conventions the job relies on (the feature group is derived from this view's output schema):
--   * the view is named after the file and is the feature group's name;
--   * the first column is the record identifier (here the window start, 'YYYY-MM-DD HH:MM:SS' UTC);
--   * a column named event_time holds the window end in unix seconds (DOUBLE);
--   * STRING columns become String features, integer columns Integral, DOUBLE columns Fractional.
CREATE TEMPORARY VIEW tx_minute_features AS
SELECT
    DATE_FORMAT(window_start, 'yyyy-MM-dd HH:mm:ss') AS tx_minute,
    CAST(UNIX_TIMESTAMP(DATE_FORMAT(window_end, 'yyyy-MM-dd HH:mm:ss')) AS DOUBLE) AS event_time,
    COUNT(*) AS total_nb_trx_1min,
    SUM(fee) AS total_fee_1min,
    AVG(CAST(fee AS DOUBLE)) AS avg_fee_1min
FROM TABLE(TUMBLE(TABLE unique_transactions, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end;
