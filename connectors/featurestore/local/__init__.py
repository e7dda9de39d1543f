"""A local Amazon SageMaker Feature Store, so unmodified boto3/SageMaker code runs without AWS: the HTTP server
(server.py) speaking both APIs, feature-group configuration as the control plane keeps it (groups.py), its
storage (store.py: SQLite online, Parquet offline) and SQL over the offline store under Athena's names
(offline.py, DuckDB). It knows only its own directory (a data dir's
featurestore/, see job/data_dir.py) and never runs on a cluster (the application zip leaves it out)."""
