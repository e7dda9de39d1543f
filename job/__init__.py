"""The Flink job, its local runtime and its command line, in rooms whose imports point one way
(cli -> local / offline -> deploy -> flow; checked by import-linter, see pyproject.toml):

- flow/     the Flink job as it runs anywhere (what the application zip ships)
- local/    this machine: the MiniCluster's JVM, the data dir, the `run` and `backfill` runners
- offline/  point-in-time training sets over the offline store
- deploy/   the application zip, a self-managed cluster, Managed Flink
- cli/      the `chainfeat` command
"""
