"""The job monitor's counters that outlive Flink's restarts and the live view's "retrying" state, on a few values."""

from __future__ import annotations

from job.local.monitor import RecentGrowth, RestartSummedCounter, innermost_cause


def test_a_counter_restarting_at_zero_is_summed_over_attempts() -> None:
    counter = RestartSummedCounter()
    assert [counter.update(value) for value in (3, 7, 2, 5, 0, 4)] == [3, 7, 9, 12, 12, 16]


def test_retrying_is_shown_while_retries_grew_within_the_window() -> None:
    retrying = RecentGrowth(window_s=15)
    assert retrying.update(0, now=100) is False  # no retry yet
    assert retrying.update(3, now=101) is True
    assert retrying.update(3, now=115.9) is True  # no new retry, still within 15 s of the last
    assert retrying.update(3, now=116.1) is False
    assert retrying.update(4, now=200) is True


def test_the_innermost_cause_is_the_udf_error() -> None:
    trace = ("org.apache.flink.runtime.JobException: Recovery is suppressed\n"
             "Caused by: java.lang.RuntimeException: Error received from SDK harness\n"
             "  File \"writer.py\", line 3, in eval\n"
             "connectors.featurestore.client.FeatureStoreError: BatchWriteRecord failed after 3 attempts\n")
    assert innermost_cause(trace) == "connectors.featurestore.client.FeatureStoreError: BatchWriteRecord failed after 3 attempts"


def test_the_innermost_cause_of_a_refused_submission_is_the_last_java_cause() -> None:
    trace = ("pyflink.util.exceptions.TableException: org.apache.flink.table.api.TableException: Failed to execute sql\n"
             "\tat org.apache.flink.table.api.internal.TableEnvironmentImpl.executeInternal(TableEnvironmentImpl.java:1)\n"
             "Caused by: org.apache.flink.runtime.client.JobInitializationException: Could not start the JobMaster.\n"
             "Caused by: java.io.EOFException\n"
             "\t... 5 more\n")
    assert innermost_cause(trace) == "java.io.EOFException"
