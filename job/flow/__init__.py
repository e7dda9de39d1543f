"""The Flink job as it runs anywhere: in a local MiniCluster, on a self-managed cluster and on Managed Flink (what
the application zip ships). It imports nothing of the local rooms: what differs locally arrives as configuration.
sql_pipeline.py names the SQL files in the order they run; pipeline.py builds the streaming job, backfill.py the
batch job; entrypoint.py starts either on a cluster."""
