"""Counters for the rare side outputs (dead letter, late), visible in the Flink dashboard and, on Managed
Flink, in CloudWatch: the service exports metrics registered under the ``kinesisanalytics`` group.

``count_dead_letter(reason)`` / ``count_late(tx_hash)`` return their argument unchanged and count one row.
They sit in the side outputs' SELECT lists, after the Java filter, so Python sees only those rare rows;
the per-transaction path stays in Java.
"""

from __future__ import annotations

from typing import Any

from pyflink.table import DataTypes
from pyflink.table.udf import FunctionContext, ScalarFunction, udf

from udfs.metric_names import DEAD_LETTER_RECORDS, LATE_RECORDS, METRIC_GROUP

SIDE_OUTPUT_COUNTERS = {"count_dead_letter": DEAD_LETTER_RECORDS, "count_late": LATE_RECORDS}


def cloudwatch_metric_group(function_context: FunctionContext) -> Any:
    group = function_context.get_metric_group()
    for name in METRIC_GROUP:
        group = group.add_group(name)
    return group


class CountingPassThrough(ScalarFunction):
    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.counter: Any = None

    def open(self, function_context: FunctionContext) -> None:
        self.counter = cloudwatch_metric_group(function_context).counter(self.metric)

    def eval(self, value: Any) -> Any:
        self.counter.inc()
        return value

    def is_deterministic(self) -> bool:
        return False  # counting is a side effect: the planner must not fold or drop the call


def register_side_output_counters(table_env: Any) -> None:
    for function_name, metric in SIDE_OUTPUT_COUNTERS.items():
        table_env.create_temporary_system_function(
            function_name, udf(CountingPassThrough(metric), result_type=DataTypes.STRING()))
