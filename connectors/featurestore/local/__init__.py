"""A local Amazon SageMaker Feature Store, so unmodified boto3/SageMaker code runs without AWS: the HTTP server
(server.py) speaking both APIs, feature-group configuration as the control plane keeps it (groups.py), its
storage (store.py: SQLite online, Parquet offline) and SQL over the offline store under Athena's names
(offline.py, DuckDB). It knows only its own directory (a data dir's STORE_DIR, see job/local/data_dir.py) and never
runs on a cluster (the application zip leaves it out)."""

STORE_DIR = "featurestore"  # the local store's directory in a chainfeat data dir
