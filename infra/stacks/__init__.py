"""One module per stack, few and cohesive: ingestion, processing, feature store, studio, monitoring."""
