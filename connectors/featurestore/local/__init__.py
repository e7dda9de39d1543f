"""A local Amazon SageMaker Feature Store, so unmodified boto3/SageMaker code runs without AWS: the HTTP server
(server.py) speaking both APIs, its storage (store.py: SQLite online, Parquet offline in SageMaker's layout)
and SQL over the offline store (offline.py, DuckDB). It knows only its own directory (a data dir's
featurestore/, see job/data_dir.py) and never runs on a cluster (the application zip leaves it out)."""
