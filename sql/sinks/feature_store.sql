-- Terminal of the feature-store writers: the writing happens in the Python writer function called
-- once per feature row (connectors/featurestore/flink_sink.py); this only gives the plan an end.
CREATE TEMPORARY TABLE feature_store_writes (
    written BIGINT
) WITH (
    'connector' = 'blackhole'
);
