"""SageMaker Feature Store: the boto3 client and the feature-group model (what the job, the CLI and the
notebook use, here and on AWS), the offline-store compaction (also the AWS Glue script), and in local/ a
compatible local service."""
