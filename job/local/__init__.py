"""This machine: the MiniCluster's JVM and Python workers, the data dir, watching a job over REST, the `run` and
`backfill` runners, the local feature store's endpoint, and `chainfeat init`'s project."""
