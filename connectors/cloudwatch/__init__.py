"""Amazon CloudWatch: custom metrics of the processes that run outside Flink (the poller)."""
