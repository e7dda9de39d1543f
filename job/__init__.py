"""The Flink job and the chainfeat command line."""
