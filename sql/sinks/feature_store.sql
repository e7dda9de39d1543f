-- Terminal of the feature-store writers: the writing happens in the vectorized Python writer function
-- (udfs/feature_store_writer.py, a bundle of feature rows at a time); this only gives the plan an end.
CREATE TEMPORARY TABLE feature_store_writes (
    written BIGINT
) WITH (
    'connector' = 'blackhole'
);
