"""The job's own metrics, named once: registered by the UDFs (udfs/metrics.py, udfs/feature_store_writer.py),
charted and alarmed on by the monitoring stack (infra/stacks/monitoring.py). No Flink import: the CDK app
reads these too."""

# Managed Flink sends a function's metrics to CloudWatch when their group starts with this key.
CLOUDWATCH_GROUP = "kinesisanalytics"
METRIC_GROUP = (CLOUDWATCH_GROUP, "chainfeat")

FEATURES_WRITTEN = "features_written"  # counter: feature rows written
PUT_RETRIES = "put_retries"  # gauge: the writer's retries so far
PUT_LATENCY_MS = "put_latency_ms"  # gauge: the last BatchWriteRecord, retries included
FRESHNESS_S = "freshness_s"  # gauge: now - the newest event time written
PARTIAL_WINDOWS_SKIPPED = "partial_windows_skipped"  # counter: feature rows of windows the data covers in part
DEAD_LETTER_RECORDS = "dead_letter_records"  # counter
LATE_RECORDS = "late_records"  # counter
