"""History for training: point-in-time training sets over the offline store (DuckDB here, Athena on AWS)."""
