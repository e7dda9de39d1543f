"""Getting the job onto a cluster: the application zip, a self-managed cluster, Managed Service for Apache Flink."""
