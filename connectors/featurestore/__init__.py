"""SageMaker Feature Store: the boto3 client, the local compatible server, offline queries."""
