-- The typed transaction's columns (names and types), shared by the source tables (sources/transaction_fields.sql)
-- and the late output (sinks/files.sql). inputs / outputs: the transaction's inputs and outputs in the API's order,
-- each its address (null for an output without one) and value (satoshi), as the poller writes them
-- (connectors/blockchain/transactions.py); `value` is a reserved word in Flink SQL, hence the backquotes.
    `hash` STRING,
    ver INT,
    vin_sz INT,
    vout_sz INT,
    size INT,
    weight INT,
    fee BIGINT,
    relayed_by STRING,
    lock_time BIGINT,
    tx_index BIGINT,
    double_spend BOOLEAN,
    `time` BIGINT,
    block_index BIGINT,
    block_height BIGINT,
    rbf BOOLEAN,
    input_count INT,
    output_count INT,
    inputs ARRAY<ROW<address STRING, `value` BIGINT>>,
    outputs ARRAY<ROW<address STRING, `value` BIGINT>>,
    polled_at DOUBLE
