"""Everything that talks to an outside system: poller, spool, Kinesis, feature store."""

# The AWS region when none is configured (AWS_REGION, the properties file's FeatureStore region). The Glue
# compaction script keeps its own copy: it runs alone, without this package.
DEFAULT_REGION = "us-east-1"
