"""Amazon Kinesis Data Streams: the poller's output on AWS."""
