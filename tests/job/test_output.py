"""The CLI's rendering of one record (job/cli/output.py), on a few values."""

import json

from job.cli.output import OutputFormat, render_record


def test_a_nested_count_per_group_reads_as_key_value_pairs_in_a_table():
    text = render_record({"rows": 3, "labels_with_features": {"tx_minute_features": 2, "relay_minute": 0}},
                         OutputFormat.table)
    assert "tx_minute_features: 2, relay_minute: 0" in text
    assert "{" not in text


def test_json_keeps_the_nesting():
    record = {"rows": 3, "labels_with_features": {"tx_minute_features": 2}}
    assert json.loads(render_record(record, OutputFormat.json)) == record
