"""Everything that talks to an outside system: poller, spool, Kinesis, feature store."""
