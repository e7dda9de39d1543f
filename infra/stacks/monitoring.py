"""Monitoring: one CloudWatch dashboard for the whole flow (stream → poller → Flink → feature store) and
alarms on job down, no features for N minutes, dead-letter spikes, a silent poller and a stream nearing its
one shard's limits, sent to SNS.

Where the metrics come from: AWS/Kinesis (the stream), chainfeat/Poller (the poller's PutMetricData,
connectors/cloudwatch), AWS/KinesisAnalytics (Managed Flink's own metrics at OPERATOR level, and the job's
``kinesisanalytics.chainfeat.*`` metrics from udfs/metrics.py and the feature-store writer), and
AWS/SageMaker/FeatureStore (the service's PutRecord latency and errors). The job's own metrics are
queried with Metrics Insights, which sums over whatever extra dimensions the service adds to them.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from connectors.kinesis.producer import SHARD_BYTES_PER_S, SHARD_RECORDS_PER_S
from infra.settings import POLLER_METRICS_NAMESPACE as POLLER_NAMESPACE
from infra.settings import InfraSettings
from job.flow.sql_pipeline import DUPLICATES_SINK
from udfs import metric_names

FLINK_NAMESPACE = "AWS/KinesisAnalytics"
ONE_MINUTE = Duration.minutes(1)


def job_metric(application: str, name: str, statistic: str = "SUM", label: str | None = None,
               period: Duration = ONE_MINUTE) -> cloudwatch.MathExpression:
    """A metric the job registers under kinesisanalytics.chainfeat (Metrics Insights, summed over operators)."""
    return cloudwatch.MathExpression(
        expression=f"SELECT {statistic}({name}) FROM \"{FLINK_NAMESPACE}\" WHERE Application = '{application}'",
        label=label or name, period=period)


def operator_search(application: str, metric: str, term: str = "", statistic: str = "Sum") -> str:
    """All operators' ``metric`` (the service names the operators; SEARCH finds them without knowing them)."""
    query = " ".join(part for part in (f"{{{FLINK_NAMESPACE},Application,Operator}}", f'Application="{application}"',
                                       f'MetricName="{metric}"', term) if part)
    return f"SEARCH('{query}', '{statistic}', 60)"


class MonitoringStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, settings: InfraSettings, *, stream_name: str,
                 application_name: str, feature_group_names: list[str], **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        app = application_name

        def flink(name: str, statistic: str = "Maximum") -> cloudwatch.Metric:
            return cloudwatch.Metric(namespace=FLINK_NAMESPACE, metric_name=name, dimensions_map={"Application": app},
                                     statistic=statistic, period=ONE_MINUTE)

        def poller(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(namespace=POLLER_NAMESPACE, metric_name=name, dimensions_map={"Stream": stream_name},
                                     statistic="Sum", period=ONE_MINUTE)

        def feature_store(name: str, group: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(namespace="AWS/SageMaker/FeatureStore", metric_name=name, statistic=statistic,
                                     dimensions_map={"FeatureGroupName": group, "OperationName": "PutRecord"},
                                     period=ONE_MINUTE, label=f"{group} {name}")

        def stream(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(namespace="AWS/Kinesis", metric_name=name, statistic="Sum",
                                     dimensions_map={"StreamName": stream_name}, period=ONE_MINUTE)

        bytes_in = stream("IncomingBytes")
        # The stream is one shard (the poller keeps the polls in order on it): how full it is, by bytes or
        # records written per minute, whichever is nearer its limit.
        shard_used = cloudwatch.MathExpression(
            expression=f"100 * MAX([bytes / {60 * SHARD_BYTES_PER_S}, records / {60 * SHARD_RECORDS_PER_S}])",
            using_metrics={"bytes": bytes_in, "records": stream("IncomingRecords")},
            label="% of the shard's write limit", period=ONE_MINUTE)
        # The duplicates' sink takes each duplicate as the job drops it (sql/sinks/duplicates.sql).
        duplicates = cloudwatch.MathExpression(
            expression=f"SUM({operator_search(app, 'numRecordsIn', DUPLICATES_SINK)})",
            label="duplicates dropped", period=ONE_MINUTE)
        features_written = job_metric(app, metric_names.FEATURES_WRITTEN, label="feature rows written")
        dead_letter = job_metric(app, metric_names.DEAD_LETTER_RECORDS, label="dead letter")
        late = job_metric(app, metric_names.LATE_RECORDS, label="late")

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{settings.prefix}-pipeline",
                                              default_interval=Duration.hours(3))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Stream: bytes in, % of its shard", left=[bytes_in], right=[shard_used],
                                   width=8),
            cloudwatch.GraphWidget(title="Poller: polls and transactions",
                                   left=[poller("Polls"), poller("Transactions"), poller("RecordsPut")], width=8),
            cloudwatch.GraphWidget(title="Poller: gaps, errors, re-sent records",
                                   left=[poller("Gaps"), poller("PollErrors"), poller("RecordsResent")], width=8),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Flink: records in per operator (/s)", width=12, left=[cloudwatch.MathExpression(
                expression=operator_search(app, "numRecordsInPerSecond", statistic="Average"), label="", period=ONE_MINUTE)]),
            cloudwatch.GraphWidget(title="Flink: records out per operator (/s)", width=12, left=[cloudwatch.MathExpression(
                expression=operator_search(app, "numRecordsOutPerSecond", statistic="Average"), label="", period=ONE_MINUTE)]),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Duplicates dropped", left=[duplicates], width=8),
            cloudwatch.GraphWidget(title="Late and dead-letter records", left=[late, dead_letter], width=8),
            cloudwatch.GraphWidget(title="Checkpoints", width=8,
                                   left=[flink("lastCheckpointDuration")], right=[flink("numberOfFailedCheckpoints")]),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Feature store: PutRecord latency (ms)", width=8, left=[
                job_metric(app, metric_names.PUT_LATENCY_MS, "MAX", "as the job sees it (last put)"),
                *(feature_store("Latency", group, "Average") for group in feature_group_names)]),
            cloudwatch.GraphWidget(title="Feature store: errors and retries", width=8, left=[
                job_metric(app, metric_names.PUT_RETRIES, "MAX", "job retries (cumulative)"),
                *(feature_store(name, group, "Sum") for group in feature_group_names
                  for name in ("Operation4XXErrors", "Operation5XXErrors", "ThrottledRequests"))]),
            cloudwatch.GraphWidget(title="Freshness: now − newest event_time written (s)", width=8, left=[
                job_metric(app, metric_names.FRESHNESS_S, "MAX", "freshness (s)")], right=[features_written]),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Flink job: running time and restarts", width=12,
                                   left=[flink("runningTime")], right=[flink("numRestarts")]),
        )

        key = kms.Key(self, "AlarmTopicKey", enable_key_rotation=True, description="chainfeat: alarm notifications")
        # CloudWatch publishes to the encrypted topic, so it must be able to use the key.
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(self, "Alarms", display_name="chainfeat alarms", master_key=key, enforce_ssl=True)
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        notify = actions.SnsAction(self.topic)
        window = Duration.minutes(settings.no_features_minutes)
        self.alarms = {
            "JobDown": cloudwatch.Alarm(
                self, "JobDown", alarm_name=f"{settings.prefix}-job-down", metric=flink("runningTime"),
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD, threshold=1,
                evaluation_periods=3, treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
                alarm_description="The Flink job is not running (runningTime 0 or not reported for 3 minutes)."),
            "NoFeatures": cloudwatch.Alarm(
                self, "NoFeatures", alarm_name=f"{settings.prefix}-no-features",
                metric=job_metric(app, metric_names.FEATURES_WRITTEN, period=window), evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD, threshold=1,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
                alarm_description=f"No feature row written for {settings.no_features_minutes} minutes."),
            "DeadLetterSpike": cloudwatch.Alarm(
                self, "DeadLetterSpike", alarm_name=f"{settings.prefix}-dead-letter-spike",
                metric=job_metric(app, metric_names.DEAD_LETTER_RECORDS, period=Duration.minutes(5)), evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                threshold=settings.dead_letter_alarm_per_5_min,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description="More dead-letter records than usual: the API's format may have changed."),
            "PollerSilent": cloudwatch.Alarm(
                self, "PollerSilent", alarm_name=f"{settings.prefix}-poller-silent",
                metric=poller("Polls").with_(period=Duration.minutes(5)), evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD, threshold=1,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
                alarm_description="The poller has not completed a poll for 5 minutes."),
            "StreamNearShardLimit": cloudwatch.Alarm(
                self, "StreamNearShardLimit", alarm_name=f"{settings.prefix}-stream-near-shard-limit",
                metric=shard_used, evaluation_periods=5, datapoints_to_alarm=5,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                threshold=settings.stream_alarm_percent_of_shard,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=(f"The stream's one shard has been over {settings.stream_alarm_percent_of_shard} % of "
                                   "its write limit (1 MiB/s, 1000 records/s) for 5 minutes. The poller keeps every "
                                   "poll on one shard to keep them in order: see the README's cost section.")),
        }
        for alarm in self.alarms.values():
            alarm.add_alarm_action(notify)
            alarm.add_ok_action(notify)
        self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(alarms=list(self.alarms.values()), width=12))
